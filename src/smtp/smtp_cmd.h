/* SMTP command lines (RFC 5321 §4.1): the verb, the MAIL/RCPT paths
 * (§4.1.2, with RFC 6531 UTF-8 when SMTPUTF8 is in use) and the ESMTP
 * parameters of MAIL and RCPT (SIZE RFC 1870, BODY RFC 6152, SMTPUTF8
 * RFC 6531, AUTH RFC 4954 §5, RET/ENVID/NOTIFY/ORCPT RFC 3461), and the
 * EHLO/HELO argument. Pure parsing of untrusted (buf, len) input: no state,
 * no I/O, no replies (the session maps each error to its reply). Input is
 * one line without its CRLF; NULs and control characters are refused. */
#ifndef SESAME_SMTP_SMTP_CMD_H
#define SESAME_SMTP_SMTP_CMD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"
#include "util/strview.h"

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
    SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY, SMTP_VERB_EXPN,
    SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH, SMTP_VERB_BDAT,
    SMTP_VERB_OBSOLETE,   /* SEND SOML SAML TURN ETRN ATRN: known, not implemented */
    SMTP_VERB_NON_SMTP,   /* GET POST HEAD ... USER: another protocol talking to us */
};

/* Every way a command line can be wrong; one reply each. */
enum smtp_cmd_err {
    SMTP_CMD_OK = 0,
    SMTP_CMD_ERR_EMPTY,           /* empty line */
    SMTP_CMD_ERR_NUL,             /* NUL byte in the line */
    SMTP_CMD_ERR_CTRL,            /* CR or another control character in the line */
    SMTP_CMD_ERR_KEYWORD,         /* MAIL without "FROM:", RCPT without "TO:" */
    SMTP_CMD_ERR_PATH_SYNTAX,     /* no <...>, junk after '>' before a space */
    SMTP_CMD_ERR_PATH_TOO_LONG,   /* > SMTP_MAX_PATH_LEN */
    SMTP_CMD_ERR_ROUTE,           /* bad source route (@a,@b:) */
    SMTP_CMD_ERR_LOCAL_SYNTAX,    /* bad dot-string or quoted-string */
    SMTP_CMD_ERR_LOCAL_TOO_LONG,  /* > SMTP_MAX_LOCALPART_LEN */
    SMTP_CMD_ERR_NO_DOMAIN,       /* mailbox without "@domain" */
    SMTP_CMD_ERR_DOMAIN_SYNTAX,   /* bad domain */
    SMTP_CMD_ERR_DOMAIN_TOO_LONG, /* > SMTP_MAX_DOMAIN_LEN, or a label > 63 */
    SMTP_CMD_ERR_ADDR_LITERAL,    /* bad [IPv4] / [IPv6:...] / general literal */
    SMTP_CMD_ERR_UTF8_INVALID,    /* malformed UTF-8 */
    SMTP_CMD_ERR_UTF8_NOT_ALLOWED,/* non-ASCII address without SMTPUTF8 */
    SMTP_CMD_ERR_NULL_RCPT,       /* RCPT TO:<> */
    SMTP_CMD_ERR_PARAM_SYNTAX,    /* not keyword[=value] */
    SMTP_CMD_ERR_PARAM_UNKNOWN,   /* a parameter we do not know */
    SMTP_CMD_ERR_PARAM_UNADVERTISED, /* known, but its extension was not offered */
    SMTP_CMD_ERR_PARAM_DUPLICATE,
    SMTP_CMD_ERR_SIZE_VALUE,
    SMTP_CMD_ERR_BODY_VALUE,
    SMTP_CMD_ERR_SMTPUTF8_VALUE,  /* SMTPUTF8=... (takes no value) */
    SMTP_CMD_ERR_AUTH_VALUE,      /* AUTH= not xtext or <> */
    SMTP_CMD_ERR_RET_VALUE,
    SMTP_CMD_ERR_ENVID_VALUE,
    SMTP_CMD_ERR_NOTIFY_VALUE,
    SMTP_CMD_ERR_ORCPT_VALUE,
    SMTP_CMD_ERR_HELO_SYNTAX,     /* EHLO/HELO argument missing or not a name */
    SMTP_CMD_ERR__COUNT
};

/* A short English reason for err ("local part too long"). */
const char *smtp_cmd_strerror(enum smtp_cmd_err err);

/* Extensions the server advertised, for the parameters they allow. */
enum {
    SMTP_EXT_SIZE     = 1u << 0,
    SMTP_EXT_8BITMIME = 1u << 1,
    SMTP_EXT_SMTPUTF8 = 1u << 2,
    SMTP_EXT_AUTH     = 1u << 3,
    SMTP_EXT_DSN      = 1u << 4,
};

/* Splits a line into its verb and argument (after the first run of spaces,
 * trailing spaces removed) and names the verb. Refuses an empty line, NULs
 * and control characters (TAB included) anywhere in the line. */
enum smtp_cmd_err smtp_cmd_split(const char *buf, size_t len, enum smtp_verb *verb,
                                 struct sv *arg) __attribute__((warn_unused_result));

/* A path as parsed: the mailbox as the client wrote it (local-part quoted
 * as given, no angle brackets, no source route); "" for the null path <>.
 * "<Postmaster>" (RFC 5321 §4.1.1.3, RCPT only) gives "Postmaster". */
struct smtp_path {
    char addr[SMTP_MAX_PATH_LEN + 1];
    size_t local_len;   /* octets of the local-part in addr */
    bool null_path;
    bool utf8;          /* addr has non-ASCII (valid UTF-8) */
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_params {
    bool has_size;
    uint64_t size;            /* SIZE=; saturates at UINT64_MAX */
    enum smtp_body body;
    bool smtputf8;
    bool has_auth;            /* AUTH= given (its value is not trusted, RFC 4954 §5) */
    enum smtp_ret ret;
    bool has_envid;
};

enum {
    SMTP_NOTIFY_NEVER   = 1u << 0,
    SMTP_NOTIFY_SUCCESS = 1u << 1,
    SMTP_NOTIFY_FAILURE = 1u << 2,
    SMTP_NOTIFY_DELAY   = 1u << 3,
};

struct smtp_rcpt_params {
    unsigned notify;          /* 0 when absent */
    bool has_orcpt;
};

/* The argument of MAIL ("FROM:<path> params"). ext: the SMTP_EXT_* the
 * server advertised; parameters of others are refused. A non-ASCII path
 * needs the SMTPUTF8 parameter on this same command. */
enum smtp_cmd_err smtp_cmd_parse_mail(const char *buf, size_t len, unsigned ext,
                                      struct smtp_path *path, struct smtp_mail_params *mp)
    __attribute__((warn_unused_result));

/* The argument of RCPT ("TO:<path> params"). smtputf8: the transaction's
 * MAIL had SMTPUTF8 (a non-ASCII path needs it). */
enum smtp_cmd_err smtp_cmd_parse_rcpt(const char *buf, size_t len, unsigned ext, bool smtputf8,
                                      struct smtp_path *path, struct smtp_rcpt_params *rp)
    __attribute__((warn_unused_result));

/* The argument of EHLO/HELO: one word of printable ASCII, a Domain or an
 * address literal in practice (names with '_' are tolerated, as clients send
 * them); further words are ignored. Copied to out (outlen >= 2). */
enum smtp_cmd_err smtp_cmd_parse_helo(const char *buf, size_t len, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Checks buf as UTF-8 (RFC 3629: no overlongs, surrogates, or > U+10FFFF). */
bool smtp_utf8_valid(const char *buf, size_t len);

#endif
