package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/pgtest"
	"socialhub/internal/pseudonym"
)

// doctorEnv is a deployment's environment: the database and every secret set.
func doctorEnv(dbURL string) func(string) string {
	env := map[string]string{
		"DATABASE_URL":         dbURL,
		pseudonym.EnvKey:       strings.Repeat("ab", 32),
		"SOCIALHUB_ATTEST_KEY": strings.Repeat("cd", 32),
	}
	return func(k string) string { return env[k] }
}

// doctorCluster starts a broker and creates the hub's topics with the given partitions; a topic
// named in skip is not created.
func doctorCluster(t *testing.T, partitions int, skip ...string) []string {
	t.Helper()
	e, err := broker.StartEmbedded(broker.EmbeddedOptions{MaxMessageBytes: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	topics := event.NewTopics(event.DefaultPrefix)
	var specs []broker.TopicSpec
	for _, name := range topics.All() {
		if !containsString(skip, name) {
			specs = append(specs, broker.TopicSpec{Name: name, Partitions: partitions, Compacted: topics.Compacted(name)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, broker.EnsureTopics(ctx, broker.Config{Brokers: e.Addrs()}, specs...))
	return e.Addrs()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runDoctor runs `socialhub doctor --json` with a configuration naming the brokers.
func runDoctor(t *testing.T, brokers []string, getenv func(string) string) (doctorReport, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "socialhub.yaml")
	q := make([]string, len(brokers))
	for i, b := range brokers {
		q[i] = fmt.Sprintf("%q", b)
	}
	yaml := fmt.Sprintf("data_dir: %s\nkafka:\n  brokers: [%s]\n  topic_prefix: %s\n  partitions: 2\n  max_message_bytes: 1048576\n",
		dir, strings.Join(q, ", "), event.DefaultPrefix)
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmdDoctor(ctx, []string{"--config", path, "--json", "--timeout", "3s"}, &out, &errOut, getenv)
	var rep doctorReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "output: %s\nstderr: %s", out.String(), errOut.String())
	require.Equal(t, err == nil, rep.OK)
	if err != nil {
		require.True(t, errors.Is(err, errDoctor), "%v", err)
	}
	return rep, err
}

// find returns the checks of an area whose name contains name.
func find(rep doctorReport, area, name string) []doctorCheck {
	var out []doctorCheck
	for _, c := range rep.Checks {
		if c.Area == area && strings.Contains(c.Name, name) {
			out = append(out, c)
		}
	}
	return out
}

// failed lists the failures, for messages.
func failed(rep doctorReport) []doctorCheck {
	var out []doctorCheck
	for _, c := range rep.Checks {
		if c.Status == doctorFail {
			out = append(out, c)
		}
	}
	return out
}

func TestDoctorAllGood(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, hub.Migrations()...)
	rep, err := runDoctor(t, doctorCluster(t, 2), doctorEnv(db.URL))
	require.NoError(t, err, "%+v", failed(rep))
	for _, area := range []string{"config", "postgres", "kafka", "secrets"} {
		require.NotEmpty(t, find(rep, area, ""), area)
	}
	require.Equal(t, doctorOK, find(rep, "postgres", "migrations")[0].Status)
	require.Contains(t, find(rep, "postgres", "connect")[0].Message, "PostgreSQL ")
	for _, c := range find(rep, "kafka", "topic ") {
		require.Equal(t, doctorOK, c.Status, "%+v", c)
	}
	require.Equal(t, doctorOK, find(rep, "kafka", "topic "+event.DefaultPrefix+"catalog")[0].Status)
	require.Equal(t, doctorOK, find(rep, "kafka", "record size")[0].Status, "%+v", find(rep, "kafka", "record size"))

	// The text form says the same in plain words.
	var out bytes.Buffer
	dir := t.TempDir()
	require.NoError(t, cmdDoctor(context.Background(), []string{"--data-dir", dir}, &out, &out, doctorEnv("")))
	require.Contains(t, out.String(), "all checks passed")
}

func TestDoctorMissingTopic(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, hub.Migrations()...)
	missing := event.DefaultPrefix + "dlq"
	rep, err := runDoctor(t, doctorCluster(t, 2, missing), doctorEnv(db.URL))
	require.Error(t, err)
	fails := failed(rep)
	require.Len(t, fails, 1, "%+v", fails)
	require.Equal(t, "topic "+missing, fails[0].Name)
	require.Contains(t, fails[0].Message, "does not exist")
	require.Contains(t, fails[0].Fix, "2 partitions")
}

func TestDoctorWrongPartitions(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, hub.Migrations()...)
	rep, err := runDoctor(t, doctorCluster(t, 1), doctorEnv(db.URL))
	require.Error(t, err)
	fails := failed(rep)
	require.Len(t, fails, len(event.NewTopics("").All()), "every topic has too few partitions: %+v", fails)
	require.Contains(t, fails[0].Message, "has 1 partition(s), kafka.partitions says 2")
	require.Contains(t, fails[0].Fix, "--partitions 2")
}

func TestDoctorPendingMigrations(t *testing.T) {
	t.Parallel()
	sets := hub.Migrations()
	db := pgtest.NewDB(t, sets[:2]...)
	rep, err := runDoctor(t, doctorCluster(t, 2), doctorEnv(db.URL))
	require.Error(t, err)
	fails := failed(rep)
	require.Len(t, fails, 1, "%+v", fails)
	require.Equal(t, "migrations", fails[0].Name)
	require.Contains(t, fails[0].Message, "pending")
	require.Contains(t, fails[0].Message, sets[2].Name+"/001_")
	require.Contains(t, fails[0].Fix, "socialhub migrate")
	rights := find(rep, "postgres", "rights")
	require.Len(t, rights, 1)
	require.Equal(t, doctorOK, rights[0].Status, "the test user owns its database")
}

func TestDoctorUnreachableBroker(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, hub.Migrations()...)
	live := doctorCluster(t, 2)
	dead := "127.0.0.1:1"
	rep, err := runDoctor(t, append(live, dead), doctorEnv(db.URL))
	require.Error(t, err)
	fails := failed(rep)
	require.Len(t, fails, 1, "the live broker still answers for the topics: %+v", fails)
	require.Equal(t, "broker "+dead, fails[0].Name)
	require.Contains(t, fails[0].Message, "unreachable")
	require.NotEmpty(t, fails[0].Fix)

	// With no broker answering the topics cannot be checked, and doctor says so.
	rep, err = runDoctor(t, []string{dead}, doctorEnv(db.URL))
	require.Error(t, err)
	require.Equal(t, doctorSkip, find(rep, "kafka", "topics")[0].Status)
}
