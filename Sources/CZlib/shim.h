// zlib (zlib1g-dev, pulled in by libxml2-dev): compression ratio of generated answers, a classic
// repetition signal (a looping answer compresses far better than prose).
#include <zlib.h>
