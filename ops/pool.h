/* PLACEHOLDER */
#ifndef SG_POOL_H
#define SG_POOL_H
#endif
