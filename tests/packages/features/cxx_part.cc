#include <string>

static const std::string word = "cc";

extern "C" const char *cxx_word(void) { return word.c_str(); }
