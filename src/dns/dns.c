/* The resolver interface's common part: dns_query() (name check, then the
 * implementation), answer release, status and type names, name validation,
 * and where the --dns server comes from. It does no I/O and holds no state;
 * the implementations are dns_unbound.c and dns_zone.c. */
#include "dns/dns.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/limits.h"

void dns_query(struct dns_resolver *r, const char *name, uint16_t type,
               struct dns_answer *out)
{
    memset(out, 0, sizeof(*out));
    if (!name || !dns_name_is_valid(name, strlen(name))) {
        out->status = DNS_BADNAME;
        return;
    }
    if (!r || !r->ops || !r->ops->query) {
        out->status = DNS_TEMPFAIL;
        return;
    }
    r->ops->query(r, name, type, out);
}

void dns_answer_release(struct dns_answer *a)
{
    if (!a)
        return;
    if (a->release)
        a->release(a);
    /* The status stays readable; the records are gone. */
    a->count = 0;
    a->rrs = NULL;
    a->release = NULL;
    a->priv = NULL;
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (r && r->ops && r->ops->destroy)
        r->ops->destroy(r);
}

const char *dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:       return "OK";
    case DNS_NXDOMAIN: return "NXDOMAIN";
    case DNS_NODATA:   return "NODATA";
    case DNS_TEMPFAIL: return "TEMPFAIL";
    case DNS_BADNAME:  return "BADNAME";
    }
    return "UNKNOWN";
}

static const struct {
    uint16_t type;
    const char *name;
} dns_types[] = {
    { DNS_T_A, "A" },       { DNS_T_NS, "NS" },   { DNS_T_CNAME, "CNAME" },
    { DNS_T_SOA, "SOA" },   { DNS_T_PTR, "PTR" }, { DNS_T_MX, "MX" },
    { DNS_T_TXT, "TXT" },   { DNS_T_AAAA, "AAAA" }, { DNS_T_SPF, "SPF" },
};

const char *dns_type_name(uint16_t type)
{
    for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
        if (dns_types[i].type == type)
            return dns_types[i].name;
    return NULL;
}

int dns_type_from_name(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
        if (strcasecmp(dns_types[i].name, name) == 0)
            return dns_types[i].type;
    return -1;
}

int dns_name_is_valid(const char *name, size_t len)
{
    if (!name)
        return 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_MAX_NAME_LEN || memchr(name, '\0', len))
        return 0;
    /* label by label with memchr: this runs for every query */
    const char *p = name, *end = name + len;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t label = (size_t)((dot ? dot : end) - p);
        if (label == 0 || label > DNS_MAX_LABEL_LEN)
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
        if (p == end)
            return 0; /* an empty label before the (stripped) trailing dot */
    }
}

const char *dns_server_from_env(const char *flag_value)
{
    if (flag_value && *flag_value)
        return flag_value;
    const char *env = getenv("SESAME_DNS");
    if (env && *env)
        return env;
    return NULL;
}
