/* The JSON shapes of SPEC.md §1.1–1.3 for SPF, DKIM and DMARC verdicts,
 * shared by `sesame spf`, `sesame dkim verify` and `sesame check` so the
 * three commands can never drift apart. */
#ifndef SESAME_CLI_VERDICTS_H
#define SESAME_CLI_VERDICTS_H
#include <jansson.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/spf.h"

json_t *cli_spf_json(const struct spf_response *r);
json_t *cli_dkim_json(const struct dkim_results *r);   /* the array of signatures */
json_t *cli_dmarc_json(const struct dmarc_outcome *d);

#endif
