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
#define DNS_MAX_CNAME_CHAIN     8     /* CNAMEs followed per query; more is a loop (temperror) */

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
#define SMTP_MAX_CMD_LINE_LEN   1000  /* §4.5.3.1.4 says 512, extensions raise it; Postfix takes 2048 */
#define SMTP_MAX_AUTH_LINE_LEN  12288 /* RFC 4954 §4: AUTH lines and responses */
#define SMTP_MAX_DATA_LINE_LEN  65536 /* a DATA line; longer is refused (552 5.3.4) */
#define SMTP_MAX_ERRORS         10    /* refused commands before 421 (Postfix smtpd_hard_error_limit 20) */
#define SMTP_MAX_NOMAIL_CMDS    50    /* NOOP/RSET/VRFY/HELP/EHLO before a MAIL (Postfix junk_command_limit 100) */
#define SMTP_MAX_PIPELINE_BYTES 65536 /* input buffered while a command waits for its answer */
#define SMTP_IDLE_TIMEOUT_S     300   /* §4.5.3.2.7: 5 minutes for a command */
#define SMTP_SESSION_TIMEOUT_S  1800  /* a whole connection (slowloris) */
#define SMTP_DEFAULT_MAX_MESSAGE_SIZE (25 * 1024 * 1024) /* advertised SIZE */
#define SMTP_MAX_CONNECTIONS    10000 /* simultaneous sessions, all listeners */
#define SMTP_MAX_CONNECTIONS_PER_IP 50
#define SMTP_AUTH_FAILURES_PER_IP 10  /* failed AUTH/API key per client IP per 10 minutes */

/* HTTP API */
#define HTTP_MAX_HEADERS_SIZE   16384
#define HTTP_MAX_BODY_SIZE      (40 * 1024 * 1024) /* base64 of a 25 MiB message plus JSON */
#define HTTP_TIMEOUT_S          30
#define HTTP_THREADS            4     /* lanes accepting on the API socket (signing is CPU-bound) */

/* Messages (RFC 5322 §2.1.1) */
#define MAIL_MAX_LINE_LEN       998   /* excluding CRLF */
#define MAIL_MAX_HEADERS        1000  /* header fields we will look at */

#define MAIL_MAX_HEADER_SECTION (1024 * 1024) /* header section we keep (Postfix: 100 KiB) */
#define MAIL_MAX_MESSAGE_SIZE   (64 * 1024 * 1024) /* a whole message read by the CLI */

/* DKIM (RFC 6376, RFC 8301, RFC 8463) */
#define DKIM_MAX_SIGNATURES     16    /* DKIM-Signature fields verified per message; more are reported unverified */
#define DKIM_MAX_TAGS           64    /* tags in one tag-list (signature or key record) */
#define DKIM_MAX_SIG_FIELD_LEN  16384 /* one DKIM-Signature field (z= can be long) */
#define DKIM_MAX_KEY_RECORD_LEN 8192  /* a key record, TXT strings joined (RSA-8192 p= is ~1.4 KiB) */
#define DKIM_MAX_SIGNED_HEADERS 256   /* names in h= */
#define DKIM_MIN_RSA_BITS       1024  /* RFC 8301 §3.2: shorter keys are not accepted */
#define DKIM_MAX_RSA_BITS       8192  /* RFC 8301 §3.2 asks for up to 4096; beyond 8192 is a DoS */
#define DKIM_DEFAULT_RSA_BITS   2048  /* RFC 8301 §3.2: signers SHOULD use at least 2048 */
#define DKIM_MAX_SIG_LEN        1024  /* octets of b= (RSA-8192) */
#define DKIM_MAX_KEY_FILE       65536 /* a PEM private key file */
#define DKIM_B_PREFIX_LEN       16    /* header.b= prefix reported (RFC 6008 §4: at least 8) */

#endif
