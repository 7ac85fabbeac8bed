DROP TABLE eligibility_residents;
