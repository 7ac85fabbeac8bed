DROP TABLE IF EXISTS web_searches;
