/* JSON renderings of authentication verdicts; see cli_verdicts.h. */
#include "cli/cli_verdicts.h"

#include "cli/cli_common.h"

json_t *cli_spf_json(const struct spf_response *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string(spf_result_name(r->result)));
    json_object_set_new(o, "domain", json_string(r->domain));
    json_object_set_new(o, "mechanism", cli_json_str_or_null(r->mechanism));
    json_object_set_new(o, "explanation", cli_json_str_or_null(r->explanation));
    json_object_set_new(o, "dns_lookups", json_integer(r->dns_lookups));
    json_object_set_new(o, "void_lookups", json_integer(r->void_lookups));
    json_object_set_new(o, "problem", cli_json_str_or_null(r->problem));
    return o;
}

json_t *cli_dkim_json(const struct dkim_results *res)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < res->count; i++) {
        const struct dkim_signature_result *r = &res->sigs[i];
        json_t *o = json_object();
        json_object_set_new(o, "result", json_string(dkim_result_name(r->result)));
        json_object_set_new(o, "domain", json_string(r->domain));
        json_object_set_new(o, "selector", json_string(r->selector));
        json_object_set_new(o, "algorithm", json_string(r->algorithm));
        json_object_set_new(o, "reason", json_string(r->reason));
        json_object_set_new(o, "identity", json_string(r->identity));
        json_object_set_new(o, "header_b", json_string(r->b_prefix));
        json_object_set_new(o, "testing", json_boolean(r->testing));
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *cli_dmarc_json(const struct dmarc_outcome *d)
{
    json_t *o = json_object();
    const char *policy = dmarc_policy_name(d->policy);
    json_object_set_new(o, "result", json_string(dmarc_result_name(d->result)));
    json_object_set_new(o, "from_domain", cli_json_str_or_null(d->from_domain));
    json_object_set_new(o, "policy_domain", cli_json_str_or_null(d->policy_domain));
    json_object_set_new(o, "policy", policy ? json_string(policy) : json_null());
    json_object_set_new(o, "disposition", json_string(dmarc_policy_name(d->disposition)));
    json_object_set_new(o, "spf_aligned", json_boolean(d->spf_aligned));
    json_object_set_new(o, "dkim_aligned", json_boolean(d->dkim_aligned));
    json_object_set_new(o, "reason", json_string(d->reason));
    if (d->policy_domain[0] && d->result != DMARC_PERMERROR) {
        json_object_set_new(o, "adkim", json_string(d->adkim == DMARC_ALIGN_STRICT ? "s" : "r"));
        json_object_set_new(o, "aspf", json_string(d->aspf == DMARC_ALIGN_STRICT ? "s" : "r"));
        json_object_set_new(o, "pct", json_integer(d->record.pct));
        json_object_set_new(o, "sampled_out", json_boolean(d->sampled_out));
    }
    return o;
}
