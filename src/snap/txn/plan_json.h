/* A plan as JSON (json-c): the form the journal stores and --output=json
 * prints. Field names (stable, documented in the commands' --help):
 *   operation, domain, summary,
 *   overlays[]  {disk, filename, backing-filename, backing-filename-format,
 *                existed-empty, uid, gid, mode}
 *   merges[]    {disk, top, base}
 *   rebases[]   {filename, backing-filename, backing-filename-format,
 *                old-backing-filename, old-backing-filename-format}
 *   xml-files[] {kind: "snapshot"|"config", filename, domain, snapshot,
 *                action: "create"|"update"|"remove", summary
 *                [, old-text, new-text: journal only]}
 *   vm-state[]  {what: "nvram"|"tpm", action: "save"|"restore", from, filename}
 *   deletes[]   {filename, reason}
 *   notes[]     strings
 *   snapshot-dir-created  path or null */
#ifndef ES_SNAP_PLAN_JSON_H
#define ES_SNAP_PLAN_JSON_H

#include <json-c/json.h>
#include <stdbool.h>

#include "snap/txn/plan.h"
#include "util/err.h"

/* with_texts: include the XML texts (the journal needs them, people don't). */
int snap_plan_to_json(const snap_plan *p, bool with_texts, json_object **out, es_err *e);
/* Rebuild a plan from the journal form; origin names it in errors. */
int snap_plan_from_json(json_object *o, const char *origin, snap_plan **out, es_err *e);

/* "create", "update" or "remove" for one XML write. */
const char *snap_xml_action(const snap_xml_write *w);

#endif
