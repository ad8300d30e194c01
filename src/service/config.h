/* The service configuration: the INI file of SPEC.md §2 read with libinih
 * and checked against one typed table {section, name, type, default, min,
 * max, &field} in config.c. Every key has a default, so no file at all is
 * a valid configuration. Unknown sections or keys and bad values are
 * errors naming the file and line ("sesame.conf:7: [listen] mx: ..."). */
#ifndef SESAME_SERVICE_CONFIG_H
#define SESAME_SERVICE_CONFIG_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_STR_MAX 1024
#define CONFIG_LINE_MAX 4096          /* one line of the file, newline included */
#define CONFIG_FILE_MAX (1024 * 1024) /* the whole file */

struct config_listen {
    char text[128];              /* "127.0.0.1:2525", "[::1]:25", "" = disabled */
    char host[64];               /* parsed: "127.0.0.1", "::1" */
    unsigned port;
};

struct sesame_config {
    /* [server] */
    char hostname[256];          /* default: this machine's host name */
    char data_dir[CONFIG_STR_MAX];   /* default "./var" */
    char store[CONFIG_STR_MAX];      /* "sqlite" (default) or postgresql://... */
    unsigned workers;            /* threads for checks and store writes; default 16 */
    char public_url[256];        /* base of links in mail (sender confirmation); "" = http://[listen] http */
    /* [listen] */
    struct config_listen mx, submission, http;
    /* [tls] */
    char tls_cert[CONFIG_STR_MAX], tls_key[CONFIG_STR_MAX]; /* "" = self-signed in data_dir */
    /* [dns] */
    char dns_servers[256];       /* "" = system resolver (or $SESAME_DNS) */
    unsigned dns_timeout_ms;
    /* [delivery] */
    unsigned delivery_smtp_port; /* 25 */
    char delivery_relay[256];    /* "" = MX lookup */
    char delivery_relay_user[256], delivery_relay_password[256]; /* smarthost AUTH */
    char delivery_bounce_domain[256]; /* VERP domain without a custom MAIL FROM ("" = hostname) */
    unsigned delivery_max_connections;            /* outbound, in total */
    unsigned delivery_max_connections_per_domain;
    unsigned delivery_messages_per_minute_per_domain;
    unsigned delivery_first_retry;       /* seconds; doubles per attempt, with jitter */
    unsigned delivery_max_retry_interval;
    unsigned delivery_lifetime;          /* seconds before a deferred recipient bounces */
    unsigned delivery_lease;             /* seconds a claimed recipient stays ours (crash recovery) */
    char delivery_tls_verify[8];         /* "no" (opportunistic) | "yes" */
    /* [identities] */
    char identities_inbound_host[256];   /* MX target to publish; "" = hostname */
    char identities_spf[256];            /* SPF mechanisms for this service's IPs; "" = a:hostname */
    unsigned identities_check_interval;  /* first background check of a new identity, seconds; doubles */
    unsigned identities_verify_window;   /* background checks of a pending domain stop after (72 h) */
    unsigned identities_recheck_interval;/* verified domains are checked again every (24 h) */
    unsigned identities_missing_grace;   /* records gone this long: the domain fails (72 h) */
    unsigned identities_dkim_grace;      /* a rotated-out key stays published (7 days) */
    unsigned identities_confirm_ttl;     /* a sender confirmation link is valid (24 h) */
    /* [dmarc] */
    char dmarc_reports[8];               /* "yes": send aggregate reports as a receiver */
    unsigned dmarc_report_interval;      /* seconds; reports cover UTC-aligned intervals (1 day) */
    /* [reputation] (rates in parts per million; the file says "5%") */
    unsigned reputation_bounce_warning, reputation_bounce_pause;
    unsigned reputation_complaint_warning, reputation_complaint_pause;
    unsigned reputation_min_sends;       /* not judged below this many (500) */
    unsigned reputation_window_sends;    /* the last N sends ... (10000) */
    unsigned reputation_window_days;     /* ... or days, whichever is smaller (30) */
    unsigned reputation_volume_factor;   /* today above N x the recent daily average: warning */
    unsigned reputation_noemail_burst;   /* unknown recipients today: warning from (50) */
    /* [limits] */
    uint64_t max_message_size;   /* SMTP_DEFAULT_MAX_MESSAGE_SIZE */
    unsigned max_recipients;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    unsigned idle_timeout;       /* seconds */
    unsigned session_timeout;    /* seconds */
    unsigned max_errors;
    unsigned auth_failures_per_ip;
    /* [log] */
    char log_level[16];          /* debug, info (default), warn, error */
};

/* The embedded defaults. */
void config_defaults(struct sesame_config *c);
/* Defaults, then the file. Returns 0, or -1 with err "FILE:LINE: ..." (or
 * "FILE: ..." when it cannot be read). */
int config_load(struct sesame_config *c, const char *path, char *err, size_t errlen);
/* The same from memory (tests, fuzzing); name is used in messages. */
int config_load_string(struct sesame_config *c, const char *name, const char *text,
                       size_t len, char *err, size_t errlen);
/* Parses "host:port", "[v6]:port"; "" is a disabled listener. Returns 0/-1. */
int config_parse_listen(const char *text, struct config_listen *out);

#endif
