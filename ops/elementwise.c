/* PLACEHOLDER: to be implemented */
