/* sesame dmarc report show|send (SPEC.md §1.5). `show FILE` prints a
 * readable summary of a DMARC aggregate report another receiver sent: a
 * .xml, .xml.gz or .zip file, or a whole report mail (.eml) whose
 * attachments are read; "-" reads standard input. The parsing and the
 * per-source sums are auth/dmarc_feedback.c; this file reads the file and
 * prints. `send` is cli_dmarc_report_send (cli_dmarc_send.c).
 * Exit 0 when the report was read, 2 for bad usage or a file that is not a
 * report (the reason on stderr), 1 when the file cannot be read. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dmarc_feedback.h"
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "util/buf.h"
#include "util/zip_read.h"

/* `sesame dmarc report send`: argv[0] is "send". */
extern int cli_dmarc_report_send(int argc, char **argv);

#define SHOW_MAX_REPORTS  16   /* reports read from one mail */
#define SHOW_MAX_HFROM    3    /* header From domains printed per source */
#define SHOW_MAX_REASONS  3    /* reason types printed per failing source */

static const char usage_text[] =
    "usage: sesame dmarc report show FILE [--json]\n"
    "       sesame dmarc report send [--now] [--config FILE] [--dns ADDR[:PORT]] [--json]\n"
    "  show   prints a readable summary of a DMARC aggregate report that a receiver\n"
    "         sent to your rua address: FILE is the .xml, .xml.gz or .zip attachment,\n"
    "         or the whole report mail (.eml), or - for standard input. It shows the\n"
    "         reporter, the period, the policy published, the totals, and per source\n"
    "         IP the messages, how many passed DMARC (aligned SPF or DKIM) and how\n"
    "         many failed: the sources to fix, or the unauthorized senders that\n"
    "         p=reject stops. Exit status 0 when it read the report, 2 when FILE is\n"
    "         not a report (the reason is printed), 1 when it cannot be read.\n"
    "  send   generates and queues the due aggregate reports (see\n"
    "         'sesame dmarc report send --help').\n";

enum { O_JSON = 1, O_HELP };

static const struct option show_opts[] = {
    { "json", no_argument, NULL, O_JSON },
    { "help", no_argument, NULL, O_HELP },
    { 0 },
};

/* Reads path ("-": stdin) into b. 0, or the exit code after printing why. */
static int read_file(const char *path, struct buf *b)
{
    if (strcmp(path, "-") == 0) {
        int rc = cli_read_stdin(b);
        if (rc == EXIT_USAGE)
            return cli_usage_error("dmarc", "report show: the input is larger than %d MiB",
                                   MAIL_MAX_MESSAGE_SIZE / (1024 * 1024));
        if (rc != 0)
            return cli_runtime_error("dmarc", "report show: cannot read standard input: %s",
                                     strerror(errno));
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_runtime_error("dmarc", "report show: cannot read %s: %s", path,
                                 strerror(errno));
    char chunk[65536];
    int rc = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n && buf_append(b, chunk, n) != 0) {
            rc = b->len + n > b->cap
                     ? cli_usage_error("dmarc", "report show: %s is larger than %d MiB", path,
                                       MAIL_MAX_MESSAGE_SIZE / (1024 * 1024))
                     : cli_runtime_error("dmarc", "report show: out of memory");
            break;
        }
        if (n < sizeof chunk) {
            if (ferror(f))
                rc = cli_runtime_error("dmarc", "report show: cannot read %s: %s", path,
                                       strerror(errno));
            break;
        }
    }
    fclose(f);
    return rc;
}

/* Whether the bytes look like a mail (a header field first) rather than a
 * report file: not gzip, not zip, not '<' after a BOM and white space. */
static bool looks_like_message(const unsigned char *p, size_t n)
{
    if (gzip_magic(p, n) || zip_magic(p, n))
        return false;
    size_t i = 0;
    if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
        i = 3;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i < n && p[i] == '<')
        return false;
    size_t j = i;
    while (j < n && p[j] > ' ' && p[j] < 0x7f && p[j] != ':')
        j++;
    return j > i && j < n && p[j] == ':';
}

static void print_time(const char *label, int64_t t, const char *after)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char s[40] = "?";
    if (gmtime_r(&tt, &tm))
        strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("%s%s%s", label, s, after);
}

static json_int_t jget(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static unsigned percent(json_int_t part, json_int_t whole)
{
    return whole > 0 ? (unsigned)((part * 100 + whole / 2) / whole) : 0;
}

/* "none 120, quarantine 4" from {"none":120,"quarantine":4}. */
static void dispositions(const json_t *o, char *out, size_t outlen)
{
    struct buf b;
    buf_init_fixed(&b, out, outlen);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
        if (buf_printf(&b, "%s%s %" JSON_INTEGER_FORMAT, b.len ? ", " : "", k,
                       json_integer_value(v)) != 0)
            break;
    if (!b.len)
        snprintf(out, outlen, "-");
}

static void strings(const json_t *arr, size_t max, char *out, size_t outlen)
{
    struct buf b;
    buf_init_fixed(&b, out, outlen);
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v) {
        if (i == max) {
            int rc = buf_printf(&b, " (+%zu more)", json_array_size(arr) - max);
            (void)rc;             /* cut when it does not fit: fine */
            break;
        }
        if (buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(v)) != 0)
            break;
    }
    if (!b.len)
        snprintf(out, outlen, "-");
}

static bool has_string(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v)
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

static void print_sources(const json_t *sum)
{
    const json_t *sources = json_object_get(sum, "sources");
    size_t i;
    json_t *s;
    int w = (int)strlen("source IP");
    json_array_foreach((json_t *)sources, i, s) {
        int n = (int)strlen(json_string_value(json_object_get(s, "source_ip")));
        if (n > w)
            w = n;
    }
    printf("\n  %-*s  %9s %9s %9s %9s %9s  %-24s %s\n", w, "source IP", "messages", "passed",
           "DKIM ok", "SPF ok", "failed", "dispositions", "header From");
    json_array_foreach((json_t *)sources, i, s) {
        char disp[160], hfrom[300];
        dispositions(json_object_get(s, "dispositions"), disp, sizeof disp);
        strings(json_object_get(s, "header_from"), SHOW_MAX_HFROM, hfrom, sizeof hfrom);
        printf("  %-*s  %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
               " %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
               "  %-24s %s\n", w, json_string_value(json_object_get(s, "source_ip")),
               jget(s, "messages"), jget(s, "passed"), jget(s, "dkim_passed"),
               jget(s, "spf_passed"), jget(s, "failed"), disp, hfrom);
    }
}

static void print_failing(const json_t *sum, const char *domain)
{
    const json_t *fails = json_object_get(sum, "failing_sources");
    json_int_t failed = jget(sum, "failed");
    if (json_array_size(fails) == 0) {
        printf("\n  no failing source: every message in this report passed DMARC.\n");
        return;
    }
    printf("\n  failing sources (unauthorized sending attempts, or your own or forwarded\n"
           "  mail whose SPF and DKIM do not align with %s):\n", domain);
    size_t i;
    json_t *ip;
    json_array_foreach((json_t *)fails, i, ip) {
        const json_t *src = NULL, *s;
        size_t k;
        json_array_foreach(json_object_get(sum, "sources"), k, s)
            if (strcmp(json_string_value(json_object_get(s, "source_ip")),
                       json_string_value(ip)) == 0)
                src = s;
        if (!src)
            continue;
        char disp[160], hfrom[300], why[200] = "";
        dispositions(json_object_get(src, "dispositions"), disp, sizeof disp);
        strings(json_object_get(src, "header_from"), SHOW_MAX_HFROM, hfrom, sizeof hfrom);
        const json_t *reasons = json_object_get(src, "reasons");
        if (has_string(reasons, "forwarded") || has_string(reasons, "mailing_list") ||
            has_string(reasons, "trusted_forwarder")) {
            char r[120];
            strings(reasons, SHOW_MAX_REASONS, r, sizeof r);
            snprintf(why, sizeof why, "; the receiver says: %s (forwarding, not spoofing)", r);
        } else if (jget(src, "passed") > 0) {
            snprintf(why, sizeof why, "; the other messages passed: a legitimate sender "
                                      "with some mail not aligned");
        }
        printf("    %s: %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " message%s failed "
               "(%s), header From %s%s\n", json_string_value(ip), jget(src, "failed"),
               jget(src, "messages"), jget(src, "messages") == 1 ? "" : "s", disp, hfrom, why);
    }
    printf("\n  %" JSON_INTEGER_FORMAT " message%s failed DMARC. If a failing source is yours, "
           "align its SPF (MAIL FROM)\n  or DKIM (d=) with %s before moving to p=reject; "
           "if it is not, it is what\n  p=quarantine or p=reject stops.\n", failed,
           failed == 1 ? "" : "s", domain);
}

static void print_report(const struct dmarc_feedback *f)
{
    json_t *sum = dmarc_feedback_summary(f, 1);
    if (!sum) {
        printf("(out of memory)\n");
        return;
    }
    printf("DMARC aggregate report from %s", f->org_name);
    if (f->email[0])
        printf(" <%s>", f->email);
    printf("\n  report id:  %s\n", f->report_id);
    print_time("  period:     ", f->begin, "");
    print_time(" to ", f->end, "\n");
    printf("  policy:     %s: p=%s", f->domain, f->p[0] ? f->p : "?");
    if (f->sp[0])
        printf(" sp=%s", f->sp);
    printf(" pct=%u adkim=%s aspf=%s", f->pct, f->adkim, f->aspf);
    if (f->fo[0])
        printf(" fo=%s", f->fo);
    json_int_t msgs = jget(sum, "messages"), passed = jget(sum, "passed");
    size_t nsrc = json_array_size(json_object_get(sum, "sources"));
    printf("\n  messages:   %" JSON_INTEGER_FORMAT " in %zu record%s from %zu source IP%s: "
           "%" JSON_INTEGER_FORMAT " passed DMARC (%u%%), %" JSON_INTEGER_FORMAT " failed\n",
           msgs, f->nrows, f->nrows == 1 ? "" : "s", nsrc, nsrc == 1 ? "" : "s", passed,
           percent(passed, msgs), jget(sum, "failed"));
    if (f->nskipped)
        printf("  skipped:    %zu record%s that could not be believed (%s)\n", f->nskipped,
               f->nskipped == 1 ? "" : "s", f->skipped_reason);
    print_sources(sum);
    print_failing(sum, f->domain);
    json_decref(sum);
}

static int show(int argc, char **argv)
{
    bool json = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", show_opts, NULL)) != -1) {
        switch (c) {
        case O_JSON: json = true; break;
        case O_HELP: fputs(usage_text, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("dmarc", "report show: unknown or incomplete option '%s' "
                                   "(see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("dmarc", "report show: which FILE? (usage: sesame dmarc "
                                        "report show FILE [--json])");
    if (argc - optind > 1)
        return cli_usage_error("dmarc", "report show: unexpected argument '%s'",
                               argv[optind + 1]);
    const char *path = argv[optind];

    struct buf b;
    buf_init(&b, MAIL_MAX_MESSAGE_SIZE);
    int rc = read_file(path, &b);
    if (rc != 0) {
        buf_free(&b);
        return rc;
    }
    struct dmarc_feedback *reports = calloc(SHOW_MAX_REPORTS, sizeof *reports);
    if (!reports) {
        buf_free(&b);
        return cli_runtime_error("dmarc", "report show: out of memory");
    }
    char err[256] = "";
    size_t n = 0;
    const unsigned char *data = (const unsigned char *)(b.data ? b.data : "");
    if (looks_like_message(data, b.len))
        n = dmarc_feedback_from_message((const char *)data, b.len, reports, SHOW_MAX_REPORTS,
                                        err, sizeof err);
    else if (dmarc_feedback_parse(data, b.len, &reports[0], err, sizeof err) == 0)
        n = 1;
    buf_free(&b);
    if (n == 0) {
        free(reports);
        return cli_usage_error("dmarc", "report show: %s: %s", path, err);
    }

    rc = EXIT_RAN;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
            if (json_array_append_new(arr, dmarc_feedback_json(&reports[i])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        json_t *out = arr ? json_pack("{s:o,s:o*}", "reports", arr, "summary",
                                      dmarc_feedback_summary(reports, n))
                          : NULL;
        if (out && json_object_get(out, "summary"))
            cli_print_json(out);
        else {
            json_decref(out);
            rc = cli_runtime_error("dmarc", "report show: out of memory");
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i)
                printf("\n");
            print_report(&reports[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        dmarc_feedback_free(&reports[i]);
    free(reports);
    return rc;
}

int cli_dmarc(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    if (argc < 2 || strcmp(argv[1], "report") != 0)
        return cli_usage_error("dmarc", "usage: sesame dmarc report show FILE [--json] | "
                                        "sesame dmarc report send [--now]");
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    if (argc >= 3 && strcmp(argv[2], "show") == 0)
        return show(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[2], "send") == 0)
        return cli_dmarc_report_send(argc - 2, argv + 2);
    return cli_usage_error("dmarc", "usage: sesame dmarc report show FILE [--json] | "
                                    "sesame dmarc report send [--now]");
}
