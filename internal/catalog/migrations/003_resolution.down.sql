DROP TABLE catalog_apart;
DROP TABLE catalog_review;
DROP TABLE catalog_merges;
DROP TABLE catalog_redirects;
DROP TABLE catalog_members;
