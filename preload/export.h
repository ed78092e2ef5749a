/* The symbols heaptrace puts in the program's scope: the interposed
 * functions, heaptrace_dump() and heaptrace_inside(). Everything else is
 * hidden (-fvisibility=hidden). */
#ifndef HEAPTRACE_EXPORT_H
#define HEAPTRACE_EXPORT_H

#define HT_EXPORT __attribute__((visibility("default")))

#endif
