/* The service configuration (SPEC.md §2): libinih splits the INI text into
 * sections and key = value pairs; one typed table below says for every key
 * its section, type, default and range and where it lands in struct
 * sesame_config, and one function checks a value against it. Errors name
 * the file and line: "sesame.conf:7: [listen] mx: why".
 *
 * Our own line reader feeds libinih, so we know the current line, refuse
 * NUL bytes and overlong lines (libinih would split them silently), and
 * check section names even for empty sections. libinih's Debian build has
 * its options as globals; they are set once (pthread_once).
 *
 * It does not open the files it names (TLS keys, data_dir): the modules
 * that use them report their own errors. */
#include "service/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/limits.h"

enum ctype { T_STR, T_UINT, T_SIZE, T_LISTEN, T_ENUM, T_PERCENT };

struct ckey {
    const char *section, *name;
    enum ctype type;
    size_t off, size;            /* where in struct sesame_config, and how big */
    const char *defstr;          /* T_STR, T_LISTEN, T_ENUM, T_PERCENT ("5%") */
    uint64_t defnum;             /* T_UINT, T_SIZE */
    uint64_t min, max;           /* T_UINT, T_SIZE */
    const char *const *choices;  /* T_ENUM, NULL-terminated */
    bool nonempty;               /* T_STR: "" is refused */
    /* T_STR: extra syntax check; returns NULL or why the value is bad */
    const char *(*check)(const char *v);
};

#define FIELD(f) offsetof(struct sesame_config, f), sizeof(((struct sesame_config *)0)->f)

static const char *check_store(const char *v);
static const char *check_hostname(const char *v);
static const char *check_dns_server(const char *v);
static const char *check_relay(const char *v);
static const char *check_optional_hostname(const char *v);
static const char *check_public_url(const char *v);
static const char *check_spf_terms(const char *v);

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const yes_no[] = { "no", "yes", NULL };

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

/* The hostname default is filled from gethostname() by config_defaults. */
static const struct ckey keys[] = {
    { "server", "hostname", T_STR, FIELD(hostname), "localhost", 0, 0, 0, NULL, true,
      check_hostname },
    { "server", "data_dir", T_STR, FIELD(data_dir), "./var", 0, 0, 0, NULL, true, NULL },
    { "server", "store", T_STR, FIELD(store), "sqlite", 0, 0, 0, NULL, true, check_store },
    { "server", "workers", T_UINT, FIELD(workers), NULL, 16, 1, 1024, NULL, false, NULL },
    { "server", "public_url", T_STR, FIELD(public_url), "", 0, 0, 0, NULL, false,
      check_public_url },
    { "listen", "mx", T_LISTEN, FIELD(mx), "127.0.0.1:2525", 0, 0, 0, NULL, false, NULL },
    { "listen", "submission", T_LISTEN, FIELD(submission), "127.0.0.1:5870", 0, 0, 0, NULL,
      false, NULL },
    { "listen", "http", T_LISTEN, FIELD(http), "127.0.0.1:8080", 0, 0, 0, NULL, false, NULL },
    { "tls", "cert", T_STR, FIELD(tls_cert), "", 0, 0, 0, NULL, false, NULL },
    { "tls", "key", T_STR, FIELD(tls_key), "", 0, 0, 0, NULL, false, NULL },
    { "dns", "servers", T_STR, FIELD(dns_servers), "", 0, 0, 0, NULL, false, check_dns_server },
    { "dns", "timeout_ms", T_UINT, FIELD(dns_timeout_ms), NULL, DNS_QUERY_TIMEOUT_MS, 100,
      60000, NULL, false, NULL },
    { "delivery", "smtp_port", T_UINT, FIELD(delivery_smtp_port), NULL, 25, 1, 65535, NULL,
      false, NULL },
    { "delivery", "relay", T_STR, FIELD(delivery_relay), "", 0, 0, 0, NULL, false, check_relay },
    { "delivery", "relay_user", T_STR, FIELD(delivery_relay_user), "", 0, 0, 0, NULL, false,
      NULL },
    { "delivery", "relay_password", T_STR, FIELD(delivery_relay_password), "", 0, 0, 0, NULL,
      false, NULL },
    { "delivery", "bounce_domain", T_STR, FIELD(delivery_bounce_domain), "", 0, 0, 0, NULL,
      false, check_optional_hostname },
    { "delivery", "max_connections", T_UINT, FIELD(delivery_max_connections), NULL, 100, 1,
      100000, NULL, false, NULL },
    { "delivery", "max_connections_per_domain", T_UINT, FIELD(delivery_max_connections_per_domain),
      NULL, 5, 1, 1000, NULL, false, NULL },
    { "delivery", "messages_per_minute_per_domain", T_UINT,
      FIELD(delivery_messages_per_minute_per_domain), NULL, 1200, 1, 10000000, NULL, false, NULL },
    { "delivery", "first_retry", T_UINT, FIELD(delivery_first_retry), NULL, 60, 1, 86400, NULL,
      false, NULL },
    { "delivery", "max_retry_interval", T_UINT, FIELD(delivery_max_retry_interval), NULL, 3600,
      1, 7 * 86400, NULL, false, NULL },
    { "delivery", "lifetime", T_UINT, FIELD(delivery_lifetime), NULL, 3 * 86400, 1, 30 * 86400,
      NULL, false, NULL },
    { "delivery", "lease", T_UINT, FIELD(delivery_lease), NULL, 300, 1, 86400, NULL, false,
      NULL },
    { "delivery", "tls_verify", T_ENUM, FIELD(delivery_tls_verify), "no", 0, 0, 0, yes_no, false,
      NULL },
    { "identities", "inbound_host", T_STR, FIELD(identities_inbound_host), "", 0, 0, 0, NULL,
      false, check_optional_hostname },
    { "identities", "spf", T_STR, FIELD(identities_spf), "", 0, 0, 0, NULL, false,
      check_spf_terms },
    { "identities", "check_interval", T_UINT, FIELD(identities_check_interval), NULL, 60, 1,
      86400, NULL, false, NULL },
    { "identities", "verify_window", T_UINT, FIELD(identities_verify_window), NULL, 72 * 3600,
      60, 30 * 86400, NULL, false, NULL },
    { "identities", "recheck_interval", T_UINT, FIELD(identities_recheck_interval), NULL, 86400,
      1, 30 * 86400, NULL, false, NULL },
    { "identities", "missing_grace", T_UINT, FIELD(identities_missing_grace), NULL, 72 * 3600, 0,
      30 * 86400, NULL, false, NULL },
    { "identities", "dkim_grace", T_UINT, FIELD(identities_dkim_grace), NULL, 7 * 86400, 0,
      365 * 86400, NULL, false, NULL },
    { "identities", "confirm_ttl", T_UINT, FIELD(identities_confirm_ttl), NULL, 86400, 60,
      30 * 86400, NULL, false, NULL },
    { "dmarc", "reports", T_ENUM, FIELD(dmarc_reports), "yes", 0, 0, 0, yes_no, false, NULL },
    { "dmarc", "report_interval", T_UINT, FIELD(dmarc_report_interval), NULL, 86400, 60,
      7 * 86400, NULL, false, NULL },
    { "reputation", "bounce_warning", T_PERCENT, FIELD(reputation_bounce_warning), "5%", 0, 0, 0,
      NULL, false, NULL },
    { "reputation", "bounce_pause", T_PERCENT, FIELD(reputation_bounce_pause), "10%", 0, 0, 0,
      NULL, false, NULL },
    { "reputation", "complaint_warning", T_PERCENT, FIELD(reputation_complaint_warning), "0.1%",
      0, 0, 0, NULL, false, NULL },
    { "reputation", "complaint_pause", T_PERCENT, FIELD(reputation_complaint_pause), "0.5%", 0, 0,
      0, NULL, false, NULL },
    { "reputation", "min_sends", T_UINT, FIELD(reputation_min_sends), NULL, 500, 1, 10000000,
      NULL, false, NULL },
    { "reputation", "window_sends", T_UINT, FIELD(reputation_window_sends), NULL, 10000, 1,
      100000000, NULL, false, NULL },
    { "reputation", "window_days", T_UINT, FIELD(reputation_window_days), NULL, 30, 1, 365, NULL,
      false, NULL },
    { "reputation", "volume_factor", T_UINT, FIELD(reputation_volume_factor), NULL, 10, 2, 1000,
      NULL, false, NULL },
    { "reputation", "unknown_recipient_burst", T_UINT, FIELD(reputation_noemail_burst), NULL, 50,
      1, 10000000, NULL, false, NULL },
    { "limits", "max_message_size", T_SIZE, FIELD(max_message_size), NULL,
      SMTP_DEFAULT_MAX_MESSAGE_SIZE, 64 * KIB, 4 * GIB, NULL, false, NULL },
    { "limits", "max_recipients", T_UINT, FIELD(max_recipients), NULL, SMTP_MAX_RECIPIENTS, 1,
      100000, NULL, false, NULL },
    { "limits", "max_connections", T_UINT, FIELD(max_connections), NULL, SMTP_MAX_CONNECTIONS,
      1, 1000000, NULL, false, NULL },
    { "limits", "max_connections_per_ip", T_UINT, FIELD(max_connections_per_ip), NULL,
      SMTP_MAX_CONNECTIONS_PER_IP, 1, 1000000, NULL, false, NULL },
    { "limits", "idle_timeout", T_UINT, FIELD(idle_timeout), NULL, SMTP_IDLE_TIMEOUT_S, 1,
      86400, NULL, false, NULL },
    { "limits", "session_timeout", T_UINT, FIELD(session_timeout), NULL, SMTP_SESSION_TIMEOUT_S,
      1, 7 * 86400, NULL, false, NULL },
    { "limits", "max_errors", T_UINT, FIELD(max_errors), NULL, SMTP_MAX_ERRORS, 1, 10000, NULL,
      false, NULL },
    { "limits", "auth_failures_per_ip", T_UINT, FIELD(auth_failures_per_ip), NULL,
      SMTP_AUTH_FAILURES_PER_IP, 1, 1000000, NULL, false, NULL },
    { "log", "level", T_ENUM, FIELD(log_level), "info", 0, 0, 0, log_levels, false, NULL },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static bool known_section(const char *s, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strlen(keys[i].section) == len && memcmp(keys[i].section, s, len) == 0)
            return true;
    return false;
}

/* ---- value syntax ---- */

/* Decimal without sign; -1 on syntax or overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static bool port_ok(const char *s, unsigned *port)
{
    uint64_t v;
    if (strlen(s) > 5 || parse_u64(s, strlen(s), &v) != 0 || v < 1 || v > 65535)
        return false;
    *port = (unsigned)v;
    return true;
}

int config_parse_listen(const char *text, struct config_listen *out)
{
    struct config_listen l;
    memset(&l, 0, sizeof l);
    size_t n = strlen(text);
    if (n == 0) {
        *out = l;
        return 0;
    }
    if (n >= sizeof l.text)
        return -1;
    char host[sizeof l.host];
    const char *port;
    unsigned char addr[sizeof(struct in6_addr)];
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -1;
        size_t hl = (size_t)(close - text - 1);
        if (hl == 0 || hl >= sizeof host)
            return -1;
        memcpy(host, text + 1, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1)
            return -1;
        port = close + 2;
    } else {
        const char *colon = strchr(text, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -1;          /* no port, or an IPv6 address without brackets */
        size_t hl = (size_t)(colon - text);
        if (hl == 0 || hl >= sizeof host)
            return -1;
        memcpy(host, text, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET, host, addr) != 1)
            return -1;
        port = colon + 1;
    }
    if (!port_ok(port, &l.port))
        return -1;
    memcpy(l.text, text, n + 1);
    memcpy(l.host, host, strlen(host) + 1);
    *out = l;
    return 0;
}

static const char *check_store(const char *v)
{
    if (strcmp(v, "sqlite") == 0)
        return NULL;
    static const char *const prefixes[] = { "postgresql://", "postgres://" };
    for (size_t i = 0; i < 2; i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncmp(v, prefixes[i], pl) == 0)
            return NULL;
    }
    return "expected sqlite or a postgresql:// URL";
}

static const char *check_hostname(const char *v)
{
    size_t n = strlen(v);
    if (n > DNS_MAX_NAME_LEN)
        return "longer than a domain name can be";
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (ch == '.') {
            if (label == 0)
                return "empty label";
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return "not a host name (letters, digits, '-', '.')";
        if (++label > DNS_MAX_LABEL_LEN)
            return "label longer than 63 characters";
    }
    return NULL;
}

/* "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare IPv6 address: what the
 * resolver (dns_unbound_new) takes. */
static const char *check_dns_server(const char *v)
{
    static const char *why = "expected ADDR, ADDR:PORT or [V6]:PORT (an IP address)";
    if (!*v)
        return NULL;
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1)
        return NULL;
    struct config_listen l;
    return config_parse_listen(v, &l) == 0 ? NULL : why;
}

/* "host" or "host:port" or "[v6]:port"; "" = deliver by MX. */
/* A base URL for links: http:// or https://, then printable ASCII with no
 * space, quote or angle bracket (it goes into mail text as is). */
static const char *check_public_url(const char *v)
{
    if (!v[0])
        return NULL;
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return "give a URL starting with http:// or https://";
    for (const char *p = v; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>')
            return "a URL cannot hold spaces, quotes, angle brackets or non-ASCII";
    return NULL;
}

/* SPF mechanisms that authorise this service's outbound addresses, e.g.
 * "ip4:192.0.2.10 ip6:2001:db8::10" or "a:mx.example.com": printable
 * ASCII terms, no "all" and no "v=spf1" (sesame places them in records). */
static const char *check_spf_terms(const char *v)
{
    for (const char *p = v; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"')
            return "give SPF mechanisms in printable ASCII (e.g. ip4:192.0.2.10 a:mx.example.com)";
    for (const char *p = v; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        const char *t = n && (*p == '+' || *p == '-' || *p == '~' || *p == '?') ? p + 1 : p;
        size_t tn = n - (size_t)(t - p);
        if ((tn == 3 && strncasecmp(t, "all", 3) == 0) || (n >= 6 && strncasecmp(p, "v=spf1", 6) == 0))
            return "give only the mechanisms for this service, without v=spf1 or all";
        p = e;
    }
    return NULL;
}

static const char *check_optional_hostname(const char *v)
{
    return v[0] ? check_hostname(v) : NULL;
}

static const char *check_relay(const char *v)
{
    static const char *why = "expected HOST, HOST:PORT or [V6]:PORT";
    if (!*v)
        return NULL;
    char host[256];
    const char *port = NULL;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        unsigned char addr[sizeof(struct in6_addr)];
        size_t hl = close ? (size_t)(close - v - 1) : 0;
        if (!close || hl == 0 || hl >= sizeof host || close[1] != ':')
            return why;
        memcpy(host, v + 1, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1)
            return why;
        port = close + 2;
    } else {
        const char *colon = strchr(v, ':');
        size_t hl = colon ? (size_t)(colon - v) : strlen(v);
        if (hl == 0 || hl >= sizeof host)
            return why;
        memcpy(host, v, hl);
        host[hl] = '\0';
        if (check_hostname(host))
            return why;
        port = colon ? colon + 1 : NULL;
    }
    unsigned p;
    if (port && !port_ok(port, &p))
        return why;
    return NULL;
}

/* Checks v against k and stores it in c; returns NULL or why it is bad
 * (written to why when it needs numbers). */
static const char *set_value(struct sesame_config *c, const struct ckey *k, const char *v,
                             char *why, size_t whylen)
{
    char *field = (char *)c + k->off;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "control character in value";
    switch (k->type) {
    case T_STR: {
        size_t n = strlen(v);
        if (n >= k->size) {
            snprintf(why, whylen, "too long (at most %zu characters)", k->size - 1);
            return why;
        }
        if (k->nonempty && n == 0)
            return "must not be empty";
        const char *bad = k->check ? k->check(v) : NULL;
        if (bad)
            return bad;
        memcpy(field, v, n + 1);
        return NULL;
    }
    case T_UINT:
    case T_SIZE: {
        size_t n = strlen(v);
        uint64_t mult = 1;
        if (k->type == T_SIZE && n > 0) {
            switch (v[n - 1]) {
            case 'k': case 'K': mult = KIB; n--; break;
            case 'm': case 'M': mult = MIB; n--; break;
            case 'g': case 'G': mult = GIB; n--; break;
            default: break;
            }
        }
        uint64_t num;
        if (parse_u64(v, n, &num) != 0) {
            if (n == 0 || strspn(v, "0123456789") != n)
                return k->type == T_SIZE ? "expected a number of bytes, optionally with K, M or G"
                                         : "expected a number";
            num = UINT64_MAX;        /* only too big: say the range */
        } else {
            num = num > UINT64_MAX / mult ? UINT64_MAX : num * mult;
        }
        if (num < k->min || num > k->max) {
            snprintf(why, whylen, "must be between %llu and %llu", (unsigned long long)k->min,
                     (unsigned long long)k->max);
            return why;
        }
        if (k->type == T_SIZE) {
            uint64_t u = num;
            memcpy(field, &u, sizeof u);
        } else {
            unsigned u = (unsigned)num;
            memcpy(field, &u, sizeof u);
        }
        return NULL;
    }
    case T_PERCENT: {
        /* "5%", "0.1%": stored as parts per million (unsigned) */
        size_t n = strlen(v), ip = strspn(v, "0123456789");
        unsigned long long whole = 0, frac = 0, scale = 10000;
        size_t i = ip;
        if (n < 2 || v[n - 1] != '%' || ip == 0 || ip > 3)
            return "expected a percentage such as 5% or 0.1%";
        for (size_t j = 0; j < ip; j++)
            whole = whole * 10 + (unsigned long long)(v[j] - '0');
        if (v[i] == '.') {
            size_t fd = strspn(v + i + 1, "0123456789");
            if (fd == 0 || fd > 4)
                return "expected a percentage with at most 4 decimals, such as 0.1%";
            for (size_t j = 0; j < fd; j++) {
                scale /= 10;
                frac += (unsigned long long)(v[i + 1 + j] - '0') * scale;
            }
            i += 1 + fd;
        }
        if (i != n - 1)
            return "expected a percentage such as 5% or 0.1%";
        unsigned long long ppm = whole * 10000 + frac;
        if (ppm > 1000000)
            return "a percentage is at most 100%";
        unsigned u = (unsigned)ppm;
        memcpy(field, &u, sizeof u);
        return NULL;
    }
    case T_LISTEN: {
        struct config_listen l;
        if (config_parse_listen(v, &l) != 0)
            return "expected IPV4:PORT or [IPV6]:PORT with a port from 1 to 65535, "
                   "or nothing to disable";
        memcpy(field, &l, sizeof l);
        return NULL;
    }
    case T_ENUM:
        for (size_t i = 0; k->choices[i]; i++)
            if (strcmp(v, k->choices[i]) == 0) {
                memcpy(field, v, strlen(v) + 1);
                return NULL;
            }
        {
            size_t o = 0;
            o += (size_t)snprintf(why, whylen, "expected one of");
            for (size_t i = 0; k->choices[i] && o < whylen; i++)
                o += (size_t)snprintf(why + o, whylen - o, " %s", k->choices[i]);
        }
        return why;
    }
    return "internal: unknown type";
}

static void set_default(struct sesame_config *c, const struct ckey *k)
{
    char why[128];
    if (k->type == T_UINT || k->type == T_SIZE) {
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)k->defnum);
        if (set_value(c, k, num, why, sizeof why) == NULL)
            return;
    } else if (set_value(c, k, k->defstr, why, sizeof why) == NULL) {
        return;
    }
    /* the table contradicts itself: a bug */
    fprintf(stderr, "config: bad default for [%s] %s\n", k->section, k->name);
    abort();
}

void config_defaults(struct sesame_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        set_default(c, &keys[i]);
    char host[sizeof c->hostname];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        if (host[0] && !check_hostname(host))
            memcpy(c->hostname, host, strlen(host) + 1);
    }
}

/* ---- the parse ---- */

struct parse {
    struct sesame_config *c;
    const char *name;            /* file name for messages */
    const char *p, *end;         /* what the reader has not read yet */
    unsigned line;               /* the line libinih is working on */
    unsigned first_line[NKEYS];  /* where each key was set, 0 = not yet */
    char *err;
    size_t errlen;
    bool failed;
};

__attribute__((format(printf, 3, 4)))
static void fail(struct parse *ps, unsigned line, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = true;
    if (!ps->err || ps->errlen == 0)
        return;
    int n = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->name, line);
    if (n < 0 || (size_t)n >= ps->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* fgets for libinih over (p, end): one line per call. Stops the parse
 * (returns NULL) with an error on a NUL byte, an overlong line or an
 * unknown [section]. */
static char *reader(char *str, int num, void *stream)
{
    struct parse *ps = stream;
    if (ps->failed || ps->p >= ps->end)
        return NULL;
    size_t avail = (size_t)(ps->end - ps->p);
    const char *nl = memchr(ps->p, '\n', avail);
    size_t n = nl ? (size_t)(nl - ps->p) + 1 : avail;
    ps->line++;
    if (num < 2 || n > (size_t)num - 1) {
        fail(ps, ps->line, "line longer than %d characters", num - 2);
        return NULL;
    }
    if (memchr(ps->p, '\0', n)) {
        fail(ps, ps->line, "NUL byte");
        return NULL;
    }
    memcpy(str, ps->p, n);
    str[n] = '\0';
    ps->p += n;

    /* sections are checked here, so that an empty unknown one is seen too */
    const char *s = str;
    if (ps->line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close && !known_section(s + 1, (size_t)(close - s - 1))) {
            fail(ps, ps->line, "[%.*s]: unknown section", (int)(close - s - 1), s + 1);
            return NULL;
        }
    }
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse *ps = user;
    if (ps->failed)
        return 0;
    /* libinih keeps "; comment" as the value of "key = ; comment" */
    if (value[0] == ';')
        value = "";
    if (!section[0]) {
        fail(ps, ps->line, "%s: key before any [section]", name);
        return 0;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const struct ckey *k = &keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        if (ps->first_line[i]) {
            fail(ps, ps->line, "[%s] %s: duplicate key (first set on line %u)", section, name,
                 ps->first_line[i]);
            return 0;
        }
        ps->first_line[i] = ps->line;
        char why[160];
        const char *bad = set_value(ps->c, k, value, why, sizeof why);
        if (bad) {
            fail(ps, ps->line, "[%s] %s: %s", section, name, bad);
            return 0;
        }
        return 1;
    }
    fail(ps, ps->line, "[%s] %s: unknown key", section, name);
    return 0;
}

static void ini_setup(void)
{
    ini_max_line = CONFIG_LINE_MAX;
    ini_allow_multiline = false;     /* an indented line is a key of its own */
    ini_stop_on_first_error = true;
    ini_allow_inline_comments = true;
    ini_allow_no_value = false;
}

static size_t key_index(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return i;
    abort();
}

int config_load_string(struct sesame_config *c, const char *name, const char *text,
                       size_t len, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ini_setup);
    if (err && errlen)
        err[0] = '\0';

    struct sesame_config *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    config_defaults(tmp);
    struct parse ps = { .c = tmp, .name = name, .p = text, .end = text + len,
                        .err = err, .errlen = errlen };
    int rc = ini_parse_stream(reader, &ps, handler, &ps);
    if (rc != 0 && !ps.failed) {
        if (rc > 0)
            fail(&ps, (unsigned)rc, "syntax error: expected [section] or key = value");
        else
            fail(&ps, ps.line, "cannot parse (libinih error %d)", rc);
    }
    if (!ps.failed) {
        /* [tls] cert and key go together */
        size_t ic = key_index("tls", "cert"), ik = key_index("tls", "key");
        bool has_cert = tmp->tls_cert[0] != '\0', has_key = tmp->tls_key[0] != '\0';
        if (has_cert && !has_key)
            fail(&ps, ps.first_line[ic], "[tls] cert: set without [tls] key (both or neither)");
        else if (has_key && !has_cert)
            fail(&ps, ps.first_line[ik], "[tls] key: set without [tls] cert (both or neither)");
    }
    if (!ps.failed)
        *c = *tmp;
    free(tmp);
    return ps.failed ? -1 : 0;
}

int config_load(struct sesame_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(CONFIG_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
    int rerr = ferror(f);
    fclose(f);
    int rc = -1;
    if (rerr) {
        if (err && errlen)
            snprintf(err, errlen, "%s: read error", path);
    } else if (n > CONFIG_FILE_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
    } else {
        rc = config_load_string(c, path, text, n, err, errlen);
    }
    free(text);
    return rc;
}
