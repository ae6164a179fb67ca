/* PLACEHOLDER */
#ifndef SG_EMBEDDING_H
#define SG_EMBEDDING_H
#endif
