"""Results documents (JSON) and the self-contained HTML report rendered from them."""
