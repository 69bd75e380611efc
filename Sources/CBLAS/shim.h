// OpenBLAS' CBLAS interface. Debian's libopenblas-dev installs cblas.h under
// /usr/include/x86_64-linux-gnu (found through pkg-config "openblas").
#include <cblas.h>
