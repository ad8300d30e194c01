/* Every protocol limit sesame enforces, named once, with where it comes from.
 * Code never repeats these numbers; it includes this file. */
#ifndef SESAME_UTIL_LIMITS_H
#define SESAME_UTIL_LIMITS_H

/* DNS (RFC 1035 §2.3.4, RFC 7208 §4.3) */
#define DNS_MAX_NAME_LEN        253   /* presentation form, no trailing dot */
#define DNS_MAX_LABEL_LEN       63
#define DNS_MAX_MESSAGE_LEN     65535 /* TCP-framed message */
#define DNS_MAX_TXT_STRING      255   /* one character-string of a TXT rdata */
#define DNS_QUERY_TIMEOUT_MS    5000  /* one lookup, before temperror */

/* SPF (RFC 7208) */
#define SPF_MAX_DNS_MECHANISMS  10    /* §4.6.4: include a mx ptr exists redirect */
#define SPF_MAX_VOID_LOOKUPS    2     /* §4.6.4: NXDOMAIN or no-data answers */
#define SPF_MAX_MX_NAMES        10    /* §4.6.4: names looked up per "mx" */
#define SPF_MAX_PTR_NAMES       10    /* §4.6.4: names checked per "ptr"/%{p} */
#define SPF_MAX_RECORD_LEN      4096  /* well above any real record; TXT joined */
#define SPF_MAX_EXPANSION_LEN   4096  /* a macro-expanded string (exp= text too) */
#define SPF_MAX_TERMS           256   /* terms parsed from one record */
#define SPF_MAX_EXP_LEN         1024  /* explanation returned to the client */
#define SPF_EVAL_TIMEOUT_MS     20000 /* §4.6.4: at least 20 s for the whole check */

/* SMTP (RFC 5321 §4.5.3.1) */
#define SMTP_MAX_LINE_LEN       1000  /* text line incl. CRLF */
#define SMTP_MAX_LOCALPART_LEN  64
#define SMTP_MAX_DOMAIN_LEN     255
#define SMTP_MAX_PATH_LEN       256
#define SMTP_MAX_RECIPIENTS     100   /* minimum a server must accept */

/* Messages (RFC 5322 §2.1.1) */
#define MAIL_MAX_LINE_LEN       998   /* excluding CRLF */
#define MAIL_MAX_HEADERS        1000  /* header fields we will look at */

#endif
