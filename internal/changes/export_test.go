package changes

// DistrictOfWithEncodingJSON is DistrictOf as it was before the scan, encoding/json alone: the
// reference the district tests and FuzzDistrictOf compare DistrictOf with.
var DistrictOfWithEncodingJSON = districtOfJSON
