// libxml2 (libxml2-dev): the text writer for JUnit reports and the XML Schema validator used to check them.
#include <libxml/xmlwriter.h>
#include <libxml/xmlschemas.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
