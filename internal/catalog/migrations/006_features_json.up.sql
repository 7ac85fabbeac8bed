-- A member's match features are written whole and read whole, by every candidate query that
-- finds the member (up to MaxCandidates rows per blocking key): json keeps the bytes the hub wrote
-- instead of rendering jsonb's binary form to text for every row read, which at 100 000 listings
-- was much of the candidate query's time.
ALTER TABLE catalog_members ALTER COLUMN features TYPE json USING features::json;
