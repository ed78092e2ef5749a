/* /metrics: the Prometheus text exposition of the heap's totals and the
 * tracer's own counters. Stacks are never labels: one series per fact. */
#ifndef HEAPTRACE_METRICS_H
#define HEAPTRACE_METRICS_H

struct outbuf;

void metrics_write(struct outbuf *o);

#endif
