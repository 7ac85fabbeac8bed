package changes

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The change data written by hand reads back as encoding/json's ChangeData would.
func TestAppendChangeDataMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	entries := []Entry{
		{Seq: 1, EntityType: "service", EntityID: "s-1", Op: "created", Version: 1, Doc: []byte(`{"name": "Помощь <семьям> & детям", "id": "s-1"}`)},
		{Seq: 42, EntityType: "location", EntityID: "l\"quoted\\", Op: "updated", Version: 7, ChangedFields: []string{"name", "addresses"}, Doc: []byte(`{"a":[1, 2.50, {"b":null}]}`)},
		{Seq: 9, EntityType: "service", EntityID: "gone", Op: "deleted", Version: 3},
		{Seq: 10, EntityType: "organization", EntityID: "o\u2028", Op: "merged", Version: 2, ChangedFields: []string{}},
	}
	for _, e := range entries {
		got, err := appendChangeData(nil, e)
		require.NoError(t, err)
		want, err := json.Marshal(ChangeData{Seq: e.Seq, EntityType: e.EntityType, ID: e.EntityID, Op: e.Op, Version: e.Version,
			ChangedFields: e.ChangedFields, Entity: e.Doc})
		require.NoError(t, err)
		var g, w any
		require.NoError(t, json.Unmarshal(got, &g), "%s", got)
		require.NoError(t, json.Unmarshal(want, &w))
		require.Equal(t, w, g)
		require.True(t, json.Valid(got))
	}
	_, err := appendChangeData(nil, Entry{Seq: 1, Doc: []byte(`{"broken"`)})
	require.Error(t, err, "a document that is not JSON is refused, not published")
}
