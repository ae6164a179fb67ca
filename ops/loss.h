/* PLACEHOLDER */
#ifndef SG_LOSS_H
#define SG_LOSS_H
#endif
