/* sesame dkim (SPEC.md §1.2): keygen writes a private key and prints the TXT
 * record to publish; sign adds a DKIM-Signature on top of a message read on
 * stdin; verify checks every signature of a message through the resolver
 * (--dns / $SESAME_DNS). Text for people, --json for scripts. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/dkim.h"
#include "auth/dkim_signer.h"
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "cli/cli_verdicts.h"
#include "util/strview.h"

static const char usage_text[] =
    "usage: sesame dkim keygen --algorithm rsa-sha256|ed25519-sha256 [--bits 2048]\n"
    "                          --domain D --selector S --out KEYFILE [--force] [--json]\n"
    "       sesame dkim sign --domain D --selector S --key KEYFILE\n"
    "                        [--canonicalization relaxed/relaxed] [--headers a:b:c]\n"
    "                        [--identity AUID] [--expire SECONDS] [--body-length]\n"
    "                        [--now UNIXTIME]  < message > signed\n"
    "       sesame dkim verify [--dns ADDR[:PORT]] [--now UNIXTIME] [--json]  < message\n"
    "keygen writes a PEM private key (mode 0600) and prints the DNS TXT record\n"
    "to publish (--force allows RSA keys under 2048 bits). sign prints the message\n"
    "with a DKIM-Signature field on top; the algorithm follows the key. verify\n"
    "checks every DKIM-Signature (RFC 6376, RFC 8463, RFC 8301).\n";

enum {
    O_ALG = 256, O_BITS, O_DOMAIN, O_SELECTOR, O_OUT, O_FORCE, O_JSON, O_KEY, O_CANON,
    O_HEADERS, O_IDENTITY, O_EXPIRE, O_BODYLEN, O_NOW, O_DNS, O_HELP,
};

static const struct option opts[] = {
    { "algorithm", required_argument, NULL, O_ALG },
    { "bits", required_argument, NULL, O_BITS },
    { "domain", required_argument, NULL, O_DOMAIN },
    { "selector", required_argument, NULL, O_SELECTOR },
    { "out", required_argument, NULL, O_OUT },
    { "force", no_argument, NULL, O_FORCE },
    { "json", no_argument, NULL, O_JSON },
    { "key", required_argument, NULL, O_KEY },
    { "canonicalization", required_argument, NULL, O_CANON },
    { "headers", required_argument, NULL, O_HEADERS },
    { "identity", required_argument, NULL, O_IDENTITY },
    { "expire", required_argument, NULL, O_EXPIRE },
    { "body-length", no_argument, NULL, O_BODYLEN },
    { "now", required_argument, NULL, O_NOW },
    { "dns", required_argument, NULL, O_DNS },
    { "help", no_argument, NULL, O_HELP },
    { 0 },
};

struct args {
    const char *alg, *bits, *domain, *selector, *out, *key, *canon, *headers, *identity;
    const char *expire, *now, *dns;
    bool force, json, body_length;
};

/* Which options each subcommand takes. */
static bool allowed(const char *cmd, int opt)
{
    switch (opt) {
    case O_JSON: case O_HELP: return true;
    case O_ALG: case O_BITS: case O_OUT: case O_FORCE: return strcmp(cmd, "keygen") == 0;
    case O_DOMAIN: case O_SELECTOR: return strcmp(cmd, "verify") != 0;
    case O_KEY: case O_CANON: case O_HEADERS: case O_IDENTITY: case O_EXPIRE: case O_BODYLEN:
        return strcmp(cmd, "sign") == 0;
    case O_NOW: return strcmp(cmd, "keygen") != 0;
    case O_DNS: return strcmp(cmd, "verify") == 0;
    }
    return false;
}

static time_t parse_now(const char *s, bool *ok)
{
    unsigned long v = 0;
    *ok = true;
    if (!s)
        return time(NULL);
    *ok = sv_to_uint(sv_cstr(s), 253402300799UL, &v);
    return (time_t)v;
}

static int cmd_keygen(const struct args *a)
{
    enum dkim_algorithm alg;
    if (!a->alg)
        return cli_usage_error("dkim", "keygen needs --algorithm rsa-sha256 or ed25519-sha256");
    if (strcmp(a->alg, "rsa-sha256") == 0 || strcmp(a->alg, "rsa") == 0)
        alg = DKIM_ALG_RSA_SHA256;
    else if (strcmp(a->alg, "ed25519-sha256") == 0 || strcmp(a->alg, "ed25519") == 0)
        alg = DKIM_ALG_ED25519_SHA256;
    else
        return cli_usage_error("dkim", "--algorithm is rsa-sha256 or ed25519-sha256, not '%s'",
                               a->alg);
    unsigned long bits = 0;
    if (a->bits) {
        if (alg != DKIM_ALG_RSA_SHA256)
            return cli_usage_error("dkim", "--bits applies to RSA keys only");
        if (!sv_to_uint(sv_cstr(a->bits), 1UL << 20, &bits))
            return cli_usage_error("dkim", "--bits '%s' is not a number", a->bits);
    }
    if (!a->domain || !a->selector || !a->out)
        return cli_usage_error("dkim", "keygen needs --domain, --selector and --out");
    /* Check names before spending time on an RSA key. */
    struct dkim_sign_options o = { .domain = a->domain, .selector = a->selector };
    char err[512];
    enum dkim_status st;
    struct dkim_sign_ctx *c = dkim_sign_begin(NULL, &o, &st, err, sizeof err);
    if (!c)
        return st == DKIM_EINPUT ? cli_usage_error("dkim", "%s", err)
                                 : cli_runtime_error("dkim", "%s", err);
    dkim_sign_free(c);

    struct buf rec;
    buf_init(&rec, DKIM_MAX_KEY_RECORD_LEN);
    st = dkim_keygen(alg, (unsigned)bits, a->force, a->out, &rec, err, sizeof err);
    if (st != DKIM_OK) {
        buf_free(&rec);
        return st == DKIM_EINPUT ? cli_usage_error("dkim", "%s", err)
                                 : cli_runtime_error("dkim", "%s", err);
    }
    char name[2 * DNS_MAX_NAME_LEN + 16];
    snprintf(name, sizeof name, "%s._domainkey.%s", a->selector, a->domain);
    if (a->json) {
        json_t *o2 = json_object();
        json_t *strings = json_array();
        for (size_t i = 0; i < rec.len; i += DNS_MAX_TXT_STRING) {
            size_t n = rec.len - i < DNS_MAX_TXT_STRING ? rec.len - i : DNS_MAX_TXT_STRING;
            json_array_append_new(strings, json_stringn(rec.data + i, n));
        }
        json_object_set_new(o2, "name", json_string(name));
        json_object_set_new(o2, "type", json_string("TXT"));
        json_object_set_new(o2, "value", json_string(rec.data));
        json_object_set_new(o2, "strings", strings);
        json_object_set_new(o2, "key_file", json_string(a->out));
        cli_print_json(o2);
    } else {
        printf("%s. IN TXT", name);
        for (size_t i = 0; i < rec.len; i += DNS_MAX_TXT_STRING) {
            size_t n = rec.len - i < DNS_MAX_TXT_STRING ? rec.len - i : DNS_MAX_TXT_STRING;
            printf(" \"%.*s\"", (int)n, rec.data + i);
        }
        putchar('\n');
    }
    buf_free(&rec);
    return EXIT_RAN;
}

/* Does the message end its first line with a bare LF? */
static bool lf_only(const char *p, size_t len)
{
    const char *nl = memchr(p, '\n', len);
    return nl && (nl == p || nl[-1] != '\r');
}

static int cmd_sign(const struct args *a)
{
    if (!a->domain || !a->selector || !a->key)
        return cli_usage_error("dkim", "sign needs --domain, --selector and --key");
    struct dkim_sign_options o = {
        .domain = a->domain, .selector = a->selector, .headers = a->headers,
        .identity = a->identity, .body_length = a->body_length,
    };
    if (a->canon && dkim_canon_parse(a->canon, &o.header_canon, &o.body_canon) != 0)
        return cli_usage_error("dkim", "--canonicalization is relaxed|simple[/relaxed|simple], "
                                       "not '%s'", a->canon);
    if (a->expire && (!sv_to_uint(sv_cstr(a->expire), 100UL * 366 * 86400, &o.expire) ||
                      o.expire == 0))
        return cli_usage_error("dkim", "--expire '%s' is not a positive number of seconds",
                               a->expire);
    bool ok;
    o.now = parse_now(a->now, &ok);
    if (!ok)
        return cli_usage_error("dkim", "--now '%s' is not a UNIX time", a->now);

    char err[600];
    struct stat st;
    if (stat(a->key, &st) != 0)
        return cli_runtime_error("dkim", "cannot open key file %s: %s", a->key, strerror(errno));
    struct dkim_signer *signer = dkim_signer_load(a->key, err, sizeof err);
    if (!signer)
        return cli_usage_error("dkim", "%s", err);

    struct buf msg, sig;
    buf_init(&msg, MAIL_MAX_MESSAGE_SIZE);
    buf_init(&sig, DKIM_MAX_SIG_FIELD_LEN);
    int rc = cli_read_stdin(&msg);
    if (rc != 0) {
        dkim_signer_free(signer);
        buf_free(&msg);
        return rc == EXIT_USAGE ? cli_usage_error("dkim", "message larger than %d octets",
                                                  MAIL_MAX_MESSAGE_SIZE)
                                : cli_runtime_error("dkim", "cannot read the message: %s",
                                                    strerror(errno));
    }
    enum dkim_status s = dkim_sign_message(signer, &o, msg.data ? msg.data : "", msg.len, &sig,
                                           err, sizeof err);
    dkim_signer_free(signer);
    if (s != DKIM_OK) {
        buf_free(&msg);
        buf_free(&sig);
        return s == DKIM_EINPUT ? cli_usage_error("dkim", "%s", err)
                                : cli_runtime_error("dkim", "%s", err);
    }
    /* Keep the message's own line ends. */
    if (msg.len && lf_only(msg.data, msg.len)) {
        size_t w = 0;
        for (size_t i = 0; i < sig.len; i++)
            if (sig.data[i] != '\r')
                sig.data[w++] = sig.data[i];
        sig.len = w;
    }
    rc = EXIT_RAN;
    if (fwrite(sig.data, 1, sig.len, stdout) != sig.len ||
        (msg.len && fwrite(msg.data, 1, msg.len, stdout) != msg.len) || fflush(stdout) != 0)
        rc = cli_runtime_error("dkim", "cannot write the signed message: %s", strerror(errno));
    buf_free(&msg);
    buf_free(&sig);
    return rc;
}

static int cmd_verify(const struct args *a)
{
    bool ok;
    struct dkim_clock clock = { .now = parse_now(a->now, &ok) };
    if (!ok)
        return cli_usage_error("dkim", "--now '%s' is not a UNIX time", a->now);
    int code;
    struct dns_resolver *dns = cli_resolver("dkim", a->dns, &code);
    if (!dns)
        return code;
    struct dkim_verify_ctx *v = dkim_verify_begin(dns, &clock);
    if (!v) {
        dns_resolver_free(dns);
        return cli_runtime_error("dkim", "out of memory");
    }
    static char chunk[65536];
    size_t total = 0;
    int rc = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, stdin);
        total += n;
        if (n && dkim_verify_write(v, chunk, n) != 0) {
            rc = cli_runtime_error("dkim", "out of memory");
            break;
        }
        if (n < sizeof chunk) {
            if (ferror(stdin))
                rc = cli_runtime_error("dkim", "cannot read the message: %s", strerror(errno));
            break;
        }
    }
    struct dkim_results res = { 0 };
    if (rc == 0 && dkim_verify_finish(v, &res) != 0)
        rc = cli_runtime_error("dkim", "out of memory");
    dkim_verify_free(v);
    dns_resolver_free(dns);
    if (rc != 0) {
        dkim_results_free(&res);
        return rc;
    }
    if (a->json) {
        json_t *arr = cli_dkim_json(&res);
        json_t *top = json_object();
        json_object_set_new(top, "signatures", arr);
        cli_print_json(top);
    } else if (res.count == 0) {
        printf("DKIM none: the message has no DKIM-Signature field\n");
    } else {
        for (size_t i = 0; i < res.count; i++) {
            const struct dkim_signature_result *r = &res.sigs[i];
            printf("DKIM %s for %s (selector %s, %s%s%s)%s%s\n", dkim_result_name(r->result),
                   r->domain[0] ? r->domain : "(no d=)", r->selector[0] ? r->selector : "-",
                   r->algorithm[0] ? r->algorithm : "no a=", r->b_prefix[0] ? ", b=" : "",
                   r->b_prefix, r->reason[0] ? ": " : "", r->reason);
            if (r->testing)
                printf("  the key is in testing mode (t=y): treat as unsigned\n");
        }
    }
    (void)total;
    dkim_results_free(&res);
    return EXIT_RAN;
}

int cli_dkim(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc < 2) {
            return cli_usage_error("dkim", "missing subcommand: keygen, sign or verify "
                                           "(see --help)");
        }
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "keygen") != 0 && strcmp(cmd, "sign") != 0 && strcmp(cmd, "verify") != 0)
        return cli_usage_error("dkim", "unknown subcommand '%s' (keygen, sign or verify)", cmd);
    struct args a = { 0 };
    int c;
    opterr = 0;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == '?' || c == ':' || !allowed(cmd, c))
            return cli_usage_error("dkim", "%s: unknown or incomplete option '%s' (see --help)",
                                   cmd, argv[optind - 1]);
        switch (c) {
        case O_ALG: a.alg = optarg; break;
        case O_BITS: a.bits = optarg; break;
        case O_DOMAIN: a.domain = optarg; break;
        case O_SELECTOR: a.selector = optarg; break;
        case O_OUT: a.out = optarg; break;
        case O_FORCE: a.force = true; break;
        case O_JSON: a.json = true; break;
        case O_KEY: a.key = optarg; break;
        case O_CANON: a.canon = optarg; break;
        case O_HEADERS: a.headers = optarg; break;
        case O_IDENTITY: a.identity = optarg; break;
        case O_EXPIRE: a.expire = optarg; break;
        case O_BODYLEN: a.body_length = true; break;
        case O_NOW: a.now = optarg; break;
        case O_DNS: a.dns = optarg; break;
        case O_HELP: fputs(usage_text, stdout); return EXIT_RAN;
        }
    }
    if (optind < argc)
        return cli_usage_error("dkim", "unexpected argument '%s'", argv[optind]);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(&a);
    if (strcmp(cmd, "sign") == 0)
        return cmd_sign(&a);
    return cmd_verify(&a);
}
