/* PLACEHOLDER */
#ifndef SG_ATTENTION_H
#define SG_ATTENTION_H
#endif
