DROP TABLE resolve_offsets;
