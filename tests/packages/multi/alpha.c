#include "common.h"
const char *alpha(void) { return "alpha-" COMMON_WORD; }
