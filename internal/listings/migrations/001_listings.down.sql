DROP TABLE listing_feeds;
DROP TABLE listings;
