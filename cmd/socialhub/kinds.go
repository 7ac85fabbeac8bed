package main

import (
	"socialhub/connectors"
	"socialhub/connectors/casestatus"
	"socialhub/connectors/csv"
	"socialhub/connectors/hsds"
	"socialhub/connectors/httpjson"
	"socialhub/connectors/ngogrants"
	"socialhub/connectors/residents"
)

// kinds registers every kind of source the hub knows. Add a kind here, explicitly.
func kinds() *connectors.Registry {
	return connectors.NewRegistry(
		casestatus.Kind(),
		csv.Kind(),
		hsds.Kind(),
		httpjson.Kind(),
		ngogrants.Kind(),
		residents.Kind(),
	)
}
