// libxml2 (libxml2-dev): the text writer for JUnit reports, the XML Schema validator used to check them, and the
// HTML parser the tests read report.html with.
//
// Debian's libxml2 is built with ICU, so <libxml/encoding.h> includes the system <unicode/ucnv.h>. Foundation
// on Linux ships its own ICU headers (_FoundationICU) and Clang rejects the two `UErrorCode` definitions when a
// Swift file imports both modules. libxml2's public structs only hold opaque converter pointers, so declare
// those two types and keep the system ICU header out.
#include <stdint.h>
#ifndef UCNV_H
#define UCNV_H
typedef struct UConverter UConverter;
typedef uint16_t UChar;
#endif
#include <libxml/xmlwriter.h>
#include <libxml/xmlschemas.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/HTMLparser.h>
