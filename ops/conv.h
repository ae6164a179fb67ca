/* PLACEHOLDER */
#ifndef SG_CONV_H
#define SG_CONV_H
#endif
