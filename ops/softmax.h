/* PLACEHOLDER */
#ifndef SG_SOFTMAX_H
#define SG_SOFTMAX_H
#endif
