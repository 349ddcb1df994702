/* The chain doctor's findings and plan (qcow2/doctor.h) as text, one
 * finding a line, and as JSON (img doctor --help says the fields). */
#ifndef ES_CMD_DOCTOR_OUT_H
#define ES_CMD_DOCTOR_OUT_H

#include <json-c/json.h>

#include "qcow2/doctor.h"

/* Each finding: indent, severity, image, kind, what, repair; then its
 * candidates, one a line. */
void es_doctor_print_findings(const qcow2_doctor_report *r, const char *indent);
/* "Repair plan:" and one line per step (nothing when the plan is empty). */
void es_doctor_print_plan(const qcow2_doctor_report *r, const char *indent);
json_object *es_doctor_findings_json(const qcow2_doctor_report *r);
json_object *es_doctor_plan_json(const qcow2_doctor_report *r);

#endif
