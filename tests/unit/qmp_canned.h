/* Canned QMP replies in the shapes QEMU 7.2 sends them, shared by the QMP
 * unit tests and the QMP fuzz target. */
#ifndef ES_TEST_QMP_CANNED_H
#define ES_TEST_QMP_CANNED_H

/* drive0: top -> mid -> base; drive1: other -> base (a second node on the
 * same base file: QEMU opens a shared base once per chain). */
static const char *const QUERY_BLOCK =
    "[{\"device\": \"drive0\", \"inserted\": {\"node-name\": \"#block1\", \"image\": "
    "{\"filename\": \"/i/top.qcow2\", \"format\": \"qcow2\", \"backing-image\": "
    "{\"filename\": \"/i/mid.qcow2\", \"format\": \"qcow2\", \"backing-image\": "
    "{\"filename\": \"/i/base.qcow2\", \"format\": \"qcow2\"}}}}},"
    " {\"device\": \"drive1\", \"inserted\": {\"node-name\": \"#block5\", \"image\": "
    "{\"filename\": \"/i/other.qcow2\", \"format\": \"qcow2\", \"backing-image\": "
    "{\"filename\": \"/i/base.qcow2\", \"format\": \"qcow2\"}}}},"
    " {\"device\": \"cd0\"}]";

static const char *const NAMED =
    "[{\"node-name\": \"#block1\", \"drv\": \"qcow2\", \"file\": \"/i/top.qcow2\"},"
    " {\"node-name\": \"#block1f\", \"drv\": \"file\", \"file\": \"/i/top.qcow2\"},"
    " {\"node-name\": \"#block2\", \"drv\": \"qcow2\", \"file\": \"/i/mid.qcow2\", \"ro\": true},"
    " {\"node-name\": \"#block2f\", \"drv\": \"file\", \"file\": \"/i/mid.qcow2\"},"
    " {\"node-name\": \"#block3\", \"drv\": \"qcow2\", \"file\": \"/i/base.qcow2\", \"ro\": true},"
    " {\"node-name\": \"#block3f\", \"drv\": \"file\", \"file\": \"/i/base.qcow2\"},"
    " {\"node-name\": \"#block5\", \"drv\": \"qcow2\", \"file\": \"/i/other.qcow2\"},"
    " {\"node-name\": \"#block6\", \"drv\": \"qcow2\", \"file\": "
    "\"json:{\\\"driver\\\": \\\"qcow2\\\", \\\"file\\\": {\\\"driver\\\": \\\"file\\\", "
    "\\\"filename\\\": \\\"/i/base.qcow2\\\"}}\"},"
    " {\"node-name\": \"bare\", \"drv\": \"qcow2\", \"file\": \"/i/bare.qcow2\"}]";

static const char *const GRAPH =
    "{\"nodes\": [{\"id\": 1, \"type\": \"block-driver\", \"name\": \"#block1\"},"
    " {\"id\": 2, \"type\": \"block-driver\", \"name\": \"#block2\"},"
    " {\"id\": 3, \"type\": \"block-driver\", \"name\": \"#block3\"},"
    " {\"id\": 11, \"type\": \"block-driver\", \"name\": \"#block1f\"},"
    " {\"id\": 12, \"type\": \"block-driver\", \"name\": \"#block2f\"},"
    " {\"id\": 13, \"type\": \"block-driver\", \"name\": \"#block3f\"},"
    " {\"id\": 5, \"type\": \"block-driver\", \"name\": \"#block5\"},"
    " {\"id\": 6, \"type\": \"block-driver\", \"name\": \"#block6\"},"
    " {\"id\": 7, \"type\": \"block-driver\", \"name\": \"bare\"},"
    " {\"id\": 100, \"type\": \"block-backend\", \"name\": \"drive0\"},"
    " {\"id\": 101, \"type\": \"block-backend\", \"name\": \"drive1\"}],"
    " \"edges\": [{\"parent\": 100, \"child\": 1, \"name\": \"root\"},"
    " {\"parent\": 101, \"child\": 5, \"name\": \"root\"},"
    " {\"parent\": 1, \"child\": 11, \"name\": \"file\"},"
    " {\"parent\": 1, \"child\": 2, \"name\": \"backing\"},"
    " {\"parent\": 2, \"child\": 12, \"name\": \"file\"},"
    " {\"parent\": 2, \"child\": 3, \"name\": \"backing\"},"
    " {\"parent\": 3, \"child\": 13, \"name\": \"file\"},"
    " {\"parent\": 5, \"child\": 6, \"name\": \"backing\"}]}";

#endif
