-- Searches residents made in the navigator: counts per day, category and place. No personal data:
-- neither who searched nor where they stood, only the filter they chose ('' when none).
CREATE TABLE web_searches (
    day      date   NOT NULL,
    category text   NOT NULL,
    okrug    text   NOT NULL DEFAULT '',
    district text   NOT NULL DEFAULT '',
    count    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, category, okrug, district)
);
