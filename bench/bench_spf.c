/* SPF evaluations per second over the RFC 7208 test suite, sesame's engine
 * and libspf2 in the same binary, every DNS answer served from memory.
 *
 * Input: the suite in the JSON form of scripts/spf-suite-to-json.py (argv[1],
 * else $SESAME_SPF_SUITE). Output: one JSON object on stdout in the shape of
 * SPEC.md §5; diagnostics on stderr ($SESAME_BENCH_VERBOSE=1 lists the cases
 * where an engine disagrees with the suite).
 *
 * Each scenario's zone is loaded once into a sesame dns_zone (its resolver)
 * and into a libspf2 SPF_dns_zone layer, with the same data: CNAMEs are
 * flattened for libspf2 (its zone layer has no CNAME), names that exist get
 * NO_DATA entries for the types they lack, and TIMEOUT names get TRY_AGAIN.
 * Requests are built once per case; the timed loops only evaluate. Cases
 * during which either engine reaches a TIMEOUT answer are left out: a
 * timeout is not a throughput figure. Neither side caches between
 * evaluations (libspf2's per-request PTR-validated domain is reset by
 * setting the address again, an assignment). A pre-pass, untimed, checks
 * each engine's result against the suite; the notes say how many each gets
 * right and give the ratio over the cases both get right as well (libspf2
 * returns early on the records it cannot compile).
 *
 * Timing: SESAME_BENCH_SECONDS per engine (default 2), in two alternating
 * halves after a warm-up pass; then half that again over the common cases.
 *
 * Not measured: real DNS, parallelism, the HELO identity. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>

#include "auth/spf.h"
#include "dns/dns.h"
#include "dns/dns_zone.h"

#define BENCH_NAME "spf_eval_rfc7208_suite"
#define FIXED_NOW ((time_t)1700000000)
#ifdef DNS_MAX_CNAME_CHAIN
#define MAX_CNAME_CHAIN DNS_MAX_CNAME_CHAIN
#else
#define MAX_CNAME_CHAIN 8
#endif

/* ---- the suite ---------------------------------------------------------- */

struct zname {
    char *norm;   /* lower case, no trailing dot */
    const char *orig;
    json_t *recs; /* borrowed from the suite */
};

struct scenario {
    json_t *zone;
    struct zname *names;
    size_t nnames;
    /* sesame */
    struct dns_zone *z;
    struct dns_resolver *res;
    /* libspf2 */
    SPF_dns_server_t *lzone;
    SPF_server_t *lserver;      /* timed: zone layer directly */
    SPF_dns_server_t spy;       /* pre-pass: notes TIMEOUT answers */
    SPF_server_t *lserver_spy;
    unsigned lib_bad_records;   /* records libspf2's zone refused */
    int hit_timeout;            /* set by either spy during a pre-pass */
};

struct bcase {
    struct scenario *sc;
    const char *name;
    json_t *expected;           /* list of acceptable result names */
    struct spf_request req;     /* sesame */
    int v6;                     /* libspf2 */
    struct in_addr a4;
    struct in6_addr a6;
    SPF_request_t *lreq;
    int both_right;             /* both engines agree with the suite */
};

static char *norm_name(const char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        n--;
    char *out = malloc(n + 1);
    if (!out) {
        perror("malloc");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return out;
}

static const struct zname *find_name(const struct scenario *sc, const char *name)
{
    char *n = norm_name(name);
    const struct zname *hit = NULL;
    for (size_t i = 0; i < sc->nnames && !hit; i++)
        if (strcmp(sc->names[i].norm, n) == 0)
            hit = &sc->names[i];
    free(n);
    return hit;
}

static json_t *find_rec(const struct zname *zn, const char *type)
{
    size_t i;
    json_t *r;
    json_array_foreach(zn->recs, i, r) {
        const char *t = json_string_value(json_object_get(r, "type"));
        if (t && strcmp(t, type) == 0)
            return r;
    }
    return NULL;
}

/* Follows CNAMEs from name as dns_zone_resolve() does. Returns the final
 * name (NULL: NXDOMAIN); *loop is set when more than MAX_CNAME_CHAIN CNAMEs
 * would be needed (the zone resolver's SERVFAIL). */
static const struct zname *resolve_chain(const struct scenario *sc,
                                         const char *name, int *loop)
{
    const struct zname *zn = find_name(sc, name);
    *loop = 0;
    for (int followed = 0; zn; followed++) {
        json_t *c = find_rec(zn, "CNAME");
        if (!c)
            return zn;
        if (followed == MAX_CNAME_CHAIN) {
            *loop = 1;
            return zn;
        }
        zn = find_name(sc, json_string_value(json_object_get(c, "value")));
    }
    return NULL;
}

/* 1 when the answer for name comes from a name marked TIMEOUT. */
static int touches_timeout(const struct scenario *sc, const char *name)
{
    int loop;
    const struct zname *zn = resolve_chain(sc, name, &loop);
    return zn && !loop && find_rec(zn, "TIMEOUT") != NULL;
}

/* ---- sesame side -------------------------------------------------------- */

struct spy_resolver {
    struct dns_resolver base;
    struct scenario *sc;
};

static void spy_query(struct dns_resolver *r, const char *name, uint16_t type,
                      struct dns_answer *out)
{
    struct spy_resolver *s = (struct spy_resolver *)r;
    dns_query(s->sc->res, name, type, out);
    if (out->status == DNS_TEMPFAIL && touches_timeout(s->sc, name))
        s->sc->hit_timeout = 1;
}

static void spy_destroy(struct dns_resolver *r)
{
    (void)r; /* lives on the stack */
}

static const struct dns_resolver_ops spy_ops = { spy_query, spy_destroy };

/* ---- libspf2 side ------------------------------------------------------- */

static void spf2_quiet(const char *file, int line, const char *msg)
{
    (void)file; (void)line; (void)msg;
}

static SPF_dns_rr_t *spf2_spy_lookup(SPF_dns_server_t *s, const char *domain,
                                     ns_type type, int should_cache)
{
    struct scenario *sc = s->hook;
    SPF_dns_rr_t *rr = SPF_dns_lookup(sc->lzone, domain, type, should_cache);
    if (rr && rr->herrno == TRY_AGAIN && touches_timeout(sc, domain))
        sc->hit_timeout = 1;
    return rr;
}

static const struct {
    const char *name;
    ns_type type;
} lib_types[] = {
    {"A", ns_t_a}, {"AAAA", ns_t_aaaa}, {"MX", ns_t_mx},
    {"PTR", ns_t_ptr}, {"TXT", ns_t_txt}, {"SPF", (ns_type)ns_t_spf},
};
#define N_LIB_TYPES (sizeof lib_types / sizeof lib_types[0])

/* The presentation form libspf2's zone takes for one record of the JSON. */
static int lib_record_text(const char *type, json_t *v, char *out, size_t outlen)
{
    if (strcmp(type, "MX") == 0) {
        json_t *pref = json_array_get(v, 0), *host = json_array_get(v, 1);
        if (!json_is_integer(pref) || !json_is_string(host))
            return -1;
        int n = snprintf(out, outlen, "%lld %s", (long long)json_integer_value(pref),
                         json_string_value(host));
        return n < 0 || (size_t)n >= outlen ? -1 : 0;
    }
    if (strcmp(type, "TXT") == 0 || strcmp(type, "SPF") == 0) {
        /* strings concatenated; an embedded NUL ends the C string libspf2 keeps */
        size_t used = 0, i;
        json_t *s;
        json_t *list = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
        out[0] = '\0';
        json_array_foreach(list, i, s) {
            size_t n = json_string_length(s);
            if (used + n >= outlen) {
                json_decref(list);
                return -1;
            }
            memcpy(out + used, json_string_value(s), n);
            used += n;
            out[used] = '\0';
        }
        json_decref(list);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    int n = snprintf(out, outlen, "%s", json_string_value(v));
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static void lib_load_zone(struct scenario *sc)
{
    static char data[8192];
    for (size_t i = 0; i < sc->nnames; i++) {
        const char *owner = sc->names[i].orig;
        int loop;
        const struct zname *fin = resolve_chain(sc, owner, &loop);
        for (size_t t = 0; t < N_LIB_TYPES; t++) {
            if (!fin)
                continue; /* NXDOMAIN: the zone's default answer */
            if (loop) {
                SPF_dns_zone_add_str(sc->lzone, owner, lib_types[t].type, TRY_AGAIN, NULL);
                continue;
            }
            int added = 0;
            size_t j;
            json_t *r;
            json_array_foreach(fin->recs, j, r) {
                const char *rt = json_string_value(json_object_get(r, "type"));
                if (!rt || strcmp(rt, lib_types[t].name) != 0)
                    continue;
                if (lib_record_text(rt, json_object_get(r, "value"), data, sizeof data) < 0
                    || SPF_dns_zone_add_str(sc->lzone, owner, lib_types[t].type,
                                            NETDB_SUCCESS, data) != SPF_E_SUCCESS) {
                    sc->lib_bad_records++;
                    continue;
                }
                added++;
            }
            if (!added)
                SPF_dns_zone_add_str(sc->lzone, owner, lib_types[t].type,
                                     find_rec(fin, "TIMEOUT") ? TRY_AGAIN : NO_DATA, NULL);
        }
    }
}

static SPF_server_t *lib_server(SPF_dns_server_t *dns)
{
    SPF_server_t *s = SPF_server_new_dns(dns, 0);
    SPF_response_t *resp = NULL;
    if (!s) {
        fprintf(stderr, "bench_spf: SPF_server_new_dns failed\n");
        exit(1);
    }
    if (SPF_server_set_explanation(s, "DEFAULT", &resp) != SPF_E_SUCCESS) {
        fprintf(stderr, "bench_spf: SPF_server_set_explanation failed\n");
        exit(1);
    }
    if (resp)
        SPF_response_free(resp);
    if (SPF_server_set_rec_dom(s, "unknown") != SPF_E_SUCCESS) {
        fprintf(stderr, "bench_spf: SPF_server_set_rec_dom failed\n");
        exit(1);
    }
    return s;
}

static SPF_request_t *lib_request(SPF_server_t *s, const struct bcase *c,
                                  const char *helo, const char *mailfrom)
{
    SPF_request_t *r = SPF_request_new(s);
    if (!r)
        return NULL;
    if (c->v6)
        SPF_request_set_ipv6(r, c->a6);
    else
        SPF_request_set_ipv4(r, c->a4);
    if (SPF_request_set_helo_dom(r, helo) != SPF_E_SUCCESS
        || SPF_request_set_env_from(r, mailfrom) != 0
        || r->env_from_dp == NULL) { /* libspf2 asserts on a NULL domain */
        SPF_request_free(r);
        return NULL;
    }
    return r;
}

static const char *lib_result_name(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_NEUTRAL: return "neutral";
    case SPF_RESULT_PASS: return "pass";
    case SPF_RESULT_FAIL: return "fail";
    case SPF_RESULT_SOFTFAIL: return "softfail";
    case SPF_RESULT_NONE: return "none";
    case SPF_RESULT_TEMPERROR: return "temperror";
    case SPF_RESULT_PERMERROR: return "permerror";
    default: return "(invalid)";
    }
}

static inline void lib_eval(struct bcase *c)
{
    SPF_response_t *resp = NULL;
    /* forget the PTR-validated client domain libspf2 caches in the request */
    if (c->v6)
        SPF_request_set_ipv6(c->lreq, c->a6);
    else
        SPF_request_set_ipv4(c->lreq, c->a4);
    SPF_request_query_mailfrom(c->lreq, &resp);
    if (resp)
        SPF_response_free(resp);
}

/* ---- common ------------------------------------------------------------- */

static int expected_has(json_t *expected, const char *result)
{
    size_t i;
    json_t *v;
    json_array_foreach(expected, i, v)
        if (json_is_string(v) && strcasecmp(json_string_value(v), result) == 0)
            return 1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run_ours(struct bcase *cases, size_t n, double seconds, unsigned long *evals)
{
    double t0 = now_s(), t;
    unsigned long count = 0;
    do {
        for (size_t i = 0; i < n; i++) {
            struct spf_response resp;
            spf_check_mailfrom(cases[i].sc->res, &cases[i].req, &resp);
            spf_response_free(&resp);
        }
        count += n;
        t = now_s() - t0;
    } while (t < seconds);
    *evals += count;
    return t;
}

static double run_lib(struct bcase *cases, size_t n, double seconds, unsigned long *evals)
{
    double t0 = now_s(), t;
    unsigned long count = 0;
    do {
        for (size_t i = 0; i < n; i++)
            lib_eval(&cases[i]);
        count += n;
        t = now_s() - t0;
    } while (t < seconds);
    *evals += count;
    return t;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("SESAME_SPF_SUITE");
    const char *secs_env = getenv("SESAME_BENCH_SECONDS");
    int verbose = getenv("SESAME_BENCH_VERBOSE") != NULL;
    double seconds = secs_env ? strtod(secs_env, NULL) : 2.0;
    if (!path) {
        fprintf(stderr, "usage: bench_spf RFC7208-SUITE.json (or $SESAME_SPF_SUITE)\n");
        return 2;
    }
    if (!(seconds > 0))
        seconds = 2.0;

    /* libspf2 prints info and debug messages to stdout, which is ours */
    SPF_warning_handler = spf2_quiet;
    SPF_info_handler = spf2_quiet;
    SPF_debug_handler = spf2_quiet;

    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        fprintf(stderr, "bench_spf: %s:%d: %s\n", path, jerr.line, jerr.text);
        return 1;
    }
    json_t *jscen = json_object_get(root, "scenarios");
    size_t nscen = json_array_size(jscen), ntests = 0;
    if (nscen == 0) {
        fprintf(stderr, "bench_spf: %s: no scenarios\n", path);
        return 1;
    }
    for (size_t i = 0; i < nscen; i++)
        ntests += json_array_size(json_object_get(json_array_get(jscen, i), "tests"));

    struct scenario *scs = calloc(nscen, sizeof *scs);
    struct bcase *cases = calloc(ntests, sizeof *cases);
    if (!scs || !cases) {
        perror("calloc");
        return 1;
    }
    size_t ncases = 0, skipped_timeout = 0, skipped_other = 0;
    unsigned ours_ok = 0, lib_ok = 0, lib_invalid = 0, lib_bad_records = 0;

    for (size_t s = 0; s < nscen; s++) {
        struct scenario *sc = &scs[s];
        json_t *js = json_array_get(jscen, s);
        sc->zone = json_object_get(js, "zone");

        /* name index, for CNAME flattening and TIMEOUT detection */
        sc->nnames = json_object_size(sc->zone);
        sc->names = calloc(sc->nnames ? sc->nnames : 1, sizeof *sc->names);
        if (!sc->names) {
            perror("calloc");
            return 1;
        }
        const char *key;
        json_t *recs;
        size_t k = 0;
        json_object_foreach(sc->zone, key, recs) {
            sc->names[k].norm = norm_name(key);
            sc->names[k].orig = key;
            sc->names[k].recs = recs;
            k++;
        }

        /* sesame: the zone from the scenario's JSON, as the tests load it */
        char err[256] = "";
        char *zjson = json_dumps(sc->zone, JSON_COMPACT);
        sc->z = dns_zone_new();
        if (!zjson || !sc->z
            || dns_zone_load_json(sc->z, zjson, strlen(zjson), err, sizeof err) != 0) {
            fprintf(stderr, "bench_spf: scenario %zu: zone: %s\n", s, err);
            return 1;
        }
        free(zjson);
        sc->res = dns_zone_resolver_new(sc->z);
        if (!sc->res) {
            fprintf(stderr, "bench_spf: dns_zone_resolver_new failed\n");
            return 1;
        }

        /* libspf2: the same data in its zone layer */
        sc->lzone = SPF_dns_zone_new(NULL, "bench", 0);
        if (!sc->lzone) {
            fprintf(stderr, "bench_spf: SPF_dns_zone_new failed\n");
            return 1;
        }
        lib_load_zone(sc);
        lib_bad_records += sc->lib_bad_records;
        sc->lserver = lib_server(sc->lzone);
        memset(&sc->spy, 0, sizeof sc->spy);
        sc->spy.lookup = spf2_spy_lookup; /* destroy NULL: the server won't free it */
        sc->spy.name = "bench-spy";
        sc->spy.hook = sc;
        sc->lserver_spy = lib_server(&sc->spy);

        size_t t;
        json_t *jt;
        json_array_foreach(json_object_get(js, "tests"), t, jt) {
            struct bcase *c = &cases[ncases];
            const char *host = json_string_value(json_object_get(jt, "host"));
            const char *helo = json_string_value(json_object_get(jt, "helo"));
            const char *from = json_string_value(json_object_get(jt, "mailfrom"));
            c->sc = sc;
            c->name = json_string_value(json_object_get(jt, "name"));
            c->expected = json_object_get(jt, "result");
            if (!host || !helo || !from || spf_ip_parse(host, &c->req.ip) != 0) {
                fprintf(stderr, "bench_spf: %s: unusable case, skipped\n", c->name);
                skipped_other++;
                continue;
            }
            c->req.sender = from;
            c->req.helo = helo;
            c->req.receiver = NULL;
            c->req.now = FIXED_NOW;
            c->req.default_explanation = "DEFAULT";
            if (inet_pton(AF_INET, host, &c->a4) == 1)
                c->v6 = 0;
            else if (inet_pton(AF_INET6, host, &c->a6) == 1)
                c->v6 = 1;
            else {
                fprintf(stderr, "bench_spf: %s: libspf2 can't take %s, skipped\n",
                        c->name, host);
                skipped_other++;
                continue;
            }

            /* pre-pass, through the spies: correctness and TIMEOUT detection */
            sc->hit_timeout = 0;
            struct spy_resolver spy = { { &spy_ops }, sc };
            struct spf_response resp;
            spf_check_mailfrom(&spy.base, &c->req, &resp);
            const char *ours = spf_result_name(resp.result);
            spf_response_free(&resp);

            SPF_request_t *lr = lib_request(sc->lserver_spy, c, helo, from);
            const char *lib = "(no request)";
            if (lr) {
                SPF_response_t *lresp = NULL;
                SPF_request_query_mailfrom(lr, &lresp);
                SPF_result_t lres = lresp ? SPF_response_result(lresp) : SPF_RESULT_INVALID;
                lib = lib_result_name(lres);
                lib_invalid += lres == SPF_RESULT_INVALID;
                if (lresp)
                    SPF_response_free(lresp);
                SPF_request_free(lr);
            }
            int o_ok = expected_has(c->expected, ours);
            int l_ok = expected_has(c->expected, lib);
            ours_ok += (unsigned)o_ok;
            lib_ok += (unsigned)l_ok;
            if (verbose && (!o_ok || !l_ok)) {
                char *exp = json_dumps(c->expected, JSON_COMPACT);
                fprintf(stderr, "bench_spf: %-28s expected %-24s sesame %-10s%s libspf2 %-10s%s\n",
                        c->name, exp ? exp : "?", ours, o_ok ? "" : " (differs)",
                        lib, l_ok ? "" : " (differs)");
                free(exp);
            }
            if (sc->hit_timeout) {
                if (verbose)
                    fprintf(stderr, "bench_spf: %s: reaches a TIMEOUT answer, not timed\n",
                            c->name);
                skipped_timeout++;
                continue;
            }

            c->lreq = lib_request(sc->lserver, c, helo, from);
            if (!c->lreq) {
                fprintf(stderr, "bench_spf: %s: libspf2 refuses the request, skipped\n",
                        c->name);
                skipped_other++;
                continue;
            }
            c->both_right = o_ok && l_ok;
            ncases++;
        }
    }
    if (ncases == 0) {
        fprintf(stderr, "bench_spf: no case to run\n");
        return 1;
    }

    /* warm up both, then alternate halves so drift hits both alike */
    unsigned long ours_n = 0, lib_n = 0, dummy = 0;
    double ours_t = 0, lib_t = 0;
    run_ours(cases, ncases, 0, &dummy);
    run_lib(cases, ncases, 0, &dummy);
    for (int round = 0; round < 2; round++) {
        ours_t += run_ours(cases, ncases, seconds / 2, &ours_n);
        lib_t += run_lib(cases, ncases, seconds / 2, &lib_n);
    }
    double ours_rate = (double)ours_n / ours_t, lib_rate = (double)lib_n / lib_t;

    /* informative: only the cases both get right (libspf2 gives up early
     * on the records it cannot compile) */
    struct bcase *agreed = calloc(ncases, sizeof *agreed);
    size_t nagreed = 0;
    if (!agreed) {
        perror("calloc");
        return 1;
    }
    for (size_t i = 0; i < ncases; i++)
        if (cases[i].both_right)
            agreed[nagreed++] = cases[i];
    double agreed_ratio = 0;
    if (nagreed > 0) {
        unsigned long ao = 0, al = 0;
        double to = run_ours(agreed, nagreed, seconds / 2, &ao);
        double tl = run_lib(agreed, nagreed, seconds / 2, &al);
        agreed_ratio = ((double)ao / to) / ((double)al / tl);
    }
    free(agreed);

    char notes[2048];
    snprintf(notes, sizeof notes,
             "%zu of the %zu cases of the RFC 7208 suite (%zu scenarios), mail-from "
             "identity, timed ~%.1f s per engine, single thread, DNS from "
             "in-memory zones (sesame dns_zone resolver; libspf2 SPF_dns_zone, CNAMEs "
             "flattened), no caching; %zu cases skipped because an answer times out%s; "
             "sesame/libspf2 = %.2f (%.2f over the %zu timed cases both engines get right); agreement with the suite's results over all %zu "
             "cases: sesame %u, libspf2 %u (libspf2 gives no result, SPF_RESULT_INVALID "
             "with an error code, for %u, mostly records it cannot compile)%s",
             ncases, ntests, nscen, seconds, skipped_timeout,
             skipped_other ? " (others unusable: see stderr)" : "",
             ours_rate / lib_rate, agreed_ratio, nagreed, ntests, ours_ok, lib_ok, lib_invalid,
             lib_bad_records ? " (libspf2's zone refused some records)" : "");

    json_t *out = json_pack("{s:s, s:s, s:I, s:n, s:{s:I}, s:s}",
                            "name", BENCH_NAME, "unit", "eval/s",
                            "value", (json_int_t)(ours_rate + 0.5),
                            "limit",
                            "peers", "libspf2", (json_int_t)(lib_rate + 0.5),
                            "notes", notes);
    if (!out) {
        fprintf(stderr, "bench_spf: json_pack failed\n");
        return 1;
    }
    char *line = json_dumps(out, JSON_COMPACT);
    if (!line)
        return 1;
    printf("%s\n", line);
    free(line);
    json_decref(out);

    for (size_t i = 0; i < ncases; i++)
        SPF_request_free(cases[i].lreq);
    for (size_t s = 0; s < nscen; s++) {
        /* 1.2.10's SPF_server_new_dns leaves the layer to its creator */
        int owned = scs[s].lserver->destroy_resolver;
        SPF_server_free(scs[s].lserver_spy);
        SPF_server_free(scs[s].lserver);
        if (!owned)
            SPF_dns_free(scs[s].lzone);
        dns_resolver_free(scs[s].res);
        dns_zone_free(scs[s].z);
        for (size_t i = 0; i < scs[s].nnames; i++)
            free(scs[s].names[i].norm);
        free(scs[s].names);
    }
    free(cases);
    free(scs);
    json_decref(root);
    return fflush(stdout) == 0 ? 0 : 1;
}
