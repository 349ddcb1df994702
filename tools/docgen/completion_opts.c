#include "docgen/completion_opts.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* What an option's argument is, for completion: dir, file, enum:A,B or text. */
static void write_arg_kind(FILE *out, const es_opt *o)
{
    if (o->kind == ES_OPT_ENUM && o->choices) {
        fputs("enum:", out);
        for (size_t i = 0; o->choices[i]; i++)
            fprintf(out, "%s%s", i ? "," : "", o->choices[i]);
    } else if (o->flags & ES_OPTF_DIR) {
        fputs("dir", out);
    } else if (o->flags & ES_OPTF_FILE) {
        fputs("file", out);
    } else {
        fputs("text", out);
    }
}

static void write_table_options(FILE *out, const es_opt *opts, const char *section)
{
    fputs("_es_opts='-h --help", out);
    for (const es_opt *o = opts; !es_opt_is_end(o); o++) {
        if ((o->flags & ES_OPTF_HIDDEN) || (section && !(o->section && strcmp(o->section, section) == 0)))
            continue;
        if (o->letter)
            fprintf(out, " -%c", o->letter);
        if (o->name)
            fprintf(out, " --%s", o->name);
    }
    fputs("' _es_args=' ", out);
    for (const es_opt *o = opts; !es_opt_is_end(o); o++) {
        /* An optional argument is never the next word (--progress=json only). */
        if ((o->flags & (ES_OPTF_HIDDEN | ES_OPTF_OPTIONAL)) || !o->arg ||
            (section && !(o->section && strcmp(o->section, section) == 0)))
            continue;
        if (o->letter) {
            fprintf(out, "-%c:", o->letter);
            write_arg_kind(out, o);
            fputc(' ', out);
        }
        if (o->name) {
            fprintf(out, "--%s:", o->name);
            write_arg_kind(out, o);
            fputc(' ', out);
        }
    }
    fputs("'", out);
}

/* The operands of a synopsis ("[OPTIONS] DOMAIN NAME|base", "IMAGE...") as
 * kinds: the upper-case words outside option brackets that are not an
 * option's argument ("-b BACKING"). Its first line: the others are
 * alternatives with the same operands. */
/* Whether word ("-b", "--backing") is an option of opts that takes an argument. */
static bool takes_arg(const es_opt *opts, const char *word)
{
    for (const es_opt *o = opts; !es_opt_is_end(o); o++) {
        bool same = word[1] == '-' ? o->name && strcmp(word + 2, o->name) == 0
                                   : o->letter && word[1] == o->letter && !word[2];
        if (same)
            return o->arg != NULL && !(o->flags & ES_OPTF_OPTIONAL);
    }
    return false;
}

static void write_operands(FILE *out, const char *synopsis, es_operand_kind kind, const es_opt *opts)
{
    fputs(" _es_operands='", out);
    const char *sep = "";
    int depth = 0, skip_depth = 0;
    bool after_option = false;
    const char *p = synopsis;
    while (*p && *p != '\n') {
        if (*p == '[') {
            depth++;
            if (!skip_depth && (p[1] == '-' || strncmp(p, "[OPTIONS]", 9) == 0))
                skip_depth = depth;
            p++;
            continue;
        }
        if (*p == ']') {
            if (skip_depth == depth)
                skip_depth = 0;
            depth--;
            p++;
            continue;
        }
        size_t n = strcspn(p, " []\n");
        if (n == 0) {
            p++;
            continue;
        }
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(n < sizeof word ? n : sizeof word - 1), p);
        p += n;
        bool option_arg = after_option;
        after_option = word[0] == '-' && takes_arg(opts, word);
        if (skip_depth || option_arg || !isupper((unsigned char)word[0]) || strcmp(word, "OPTIONS") == 0)
            continue;
        bool repeat = strstr(word, "...") != NULL;
        const char *k;
        if (strstr(word, "DOMAIN"))
            k = "domain";
        else if (strstr(word, "PATH") || strstr(word, "DIR"))
            k = "dir";
        else if (strstr(word, "SIZE"))
            k = "text";
        else if (kind == ES_OPERANDS_IMAGE || strstr(word, "IMAGE") || strstr(word, "FILE"))
            k = "image";
        else if (strstr(word, "|base"))
            k = "snapshot+base";
        else
            k = "snapshot";
        fprintf(out, "%s%s%s", sep, k, repeat ? "..." : "");
        sep = " ";
    }
    fputs("'", out);
}

void completion_write_command(FILE *out, const es_cmd *c)
{
    fprintf(out, "    '%s') ", c->name);
    write_table_options(out, c->opts, NULL);
    write_operands(out, c->synopsis, c->operands, c->opts);
    fputs(" ;;\n", out);
}

static bool same_opt(const es_opt *a, const es_opt *b)
{
    return a->name && b->name ? strcmp(a->name, b->name) == 0 : !a->name && !b->name && a->letter == b->letter;
}

/* Before the command: the options a table flags ES_OPTF_GLOBAL, each once. */
void completion_write_global_options(FILE *out)
{
    const es_opt *global[64];
    size_t n = 0;
    for (size_t i = 0; es_commands[i]; i++) {
        const es_cmd *c = es_commands[i];
        for (const es_opt *o = c->opts; !es_opt_is_end(o); o++) {
            if (!(o->flags & ES_OPTF_GLOBAL) || (o->flags & ES_OPTF_HIDDEN))
                continue;
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = same_opt(global[j], o);
            if (!dup && n < sizeof global / sizeof global[0])
                global[n++] = o;
        }
    }
    fputs("_extsnap_global_opts='--version --help", out);
    for (size_t j = 0; j < n; j++) {
        if (global[j]->letter)
            fprintf(out, " -%c", global[j]->letter);
        if (global[j]->name)
            fprintf(out, " --%s", global[j]->name);
    }
    fputs("'\n_extsnap_global_args=' ", out);
    for (size_t j = 0; j < n; j++) {
        if (!global[j]->arg)
            continue;
        if (global[j]->letter) {
            fprintf(out, "-%c:", global[j]->letter);
            write_arg_kind(out, global[j]);
            fputc(' ', out);
        }
        if (global[j]->name) {
            fprintf(out, "--%s:", global[j]->name);
            write_arg_kind(out, global[j]);
            fputc(' ', out);
        }
    }
    fputs("'\n", out);
}
