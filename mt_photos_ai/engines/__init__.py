"""One inference engine per task; each loads once and is safe to call from several threads."""
