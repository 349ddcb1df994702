/* The man pages: extsnap(1) from docs/man/extsnap.1.in with the command
 * list and global options filled in from the command tables, and one page
 * extsnap-CMD(1) per command ("img info" -> extsnap-img-info.1). */
#ifndef ES_DOCGEN_MAN_PAGES_H
#define ES_DOCGEN_MAN_PAGES_H

/* Write every page into outdir; returns 0, or -1 after printing why. */
int man_write_all(const char *template_path, const char *outdir, const char *version);

#endif
