package loop

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
)

// Drills run on their schedule, driven here by a fake clock: not when the
// loop first sees the job, not before the next slot, once at it; the
// recovery time lands in /status and the metrics.
func TestDrillsOnSchedule(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	if err := rd.Client(t).Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "") +
		"  backups:\n    - {name: rdb, source: redis, schedule: \"@every 1h\", destination: " + dest +
		", retention: {keepLast: 2}, drill: {schedule: \"0 4 * * *\"}}\n"})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	cycle(t, l) // takes the first backup; seeds the drill with the real clock
	l.mu.Lock()
	cur := l.current
	l.mu.Unlock()
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for _, c := range []struct {
		now   time.Time
		fires bool
	}{
		{day.Add(24*time.Hour + 3*time.Hour), false}, // before the next 04:00
		{day.Add(24*time.Hour + 4*time.Hour), true},  // at it
		{day.Add(24*time.Hour + 5*time.Hour), false}, // already drilled for that slot
		{day.Add(48*time.Hour + 4*time.Hour + time.Minute), true},
	} {
		before := l.lastDrill("cache/rdb")
		l.drills(ctx, cur, c.now)
		l.Wait()
		after := l.lastDrill("cache/rdb")
		if fired := after != before; fired != c.fires {
			t.Fatalf("at %s: fired %v, want %v", c.now, fired, c.fires)
		}
	}
	s, _ := stateOf(l, "cache")
	if len(s.Backups) != 1 || s.Backups[0].Drill == nil || !s.Backups[0].Drill.OK || s.Backups[0].Drill.RecoveryTime <= 0 ||
		!regexp.MustCompile(`: ([1-9]\d*) keys of ([1-9]\d*) in the RDB`).MatchString(s.Backups[0].Drill.Detail) {
		t.Fatalf("drill status: %+v", s.Backups[0].Drill)
	}
	m := scrape(t, l)
	for _, want := range []string{`dbops_backup_drill_duration_seconds{backup_job="rdb",stack="cache"}`, `dbops_backup_drill_last_success_timestamp_seconds{backup_job="rdb",stack="cache"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metric %s missing:\n%s", want, grep(m, "drill"))
		}
	}
}

// S3 backup jobs in the loop: taken on schedule into the bucket; with a
// wrong secret the failure is reported by destination; neither secret is
// in the logs, /status or the metrics.
func TestS3BackupsInLoopHideCredentials(t *testing.T) {
	srv := testsrv.SharedS3(t)
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	t.Setenv("LOOP_S3_KEY", srv.AccessKey)
	t.Setenv("LOOP_S3_SECRET", srv.SecretKey)
	t.Setenv("LOOP_S3_WRONG", "wrong-S3-Secret-7261")
	job := func(name, secretVar string) string {
		return "    - name: " + name + "\n      source: redis\n      schedule: \"@daily\"\n      destination: s3://" + srv.Bucket + "/loop\n" +
			"      s3: {endpoint: " + srv.Endpoint + ", pathStyle: true, accessKeyId: \"${LOOP_S3_KEY}\", secretAccessKey: \"${" + secretVar + "}\"}\n" +
			"      retention: {keepLast: 2}\n"
	}
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "") + "  backups:\n" + job("good", "LOOP_S3_SECRET") + job("bad", "LOOP_S3_WRONG")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	cycle(t, l)
	s, _ := stateOf(l, "cache")
	if len(s.Backups) != 2 || s.Backups[0].Last == nil || !s.Backups[0].Last.OK || s.Backups[1].Last == nil || s.Backups[1].Last.OK ||
		!strings.Contains(s.Backups[1].Last.Error, "s3://"+srv.Bucket+"/loop") {
		t.Fatalf("backup status: %+v %+v", s.Backups[0].Last, s.Backups[1].Last)
	}
	status, _ := json.Marshal(l.Status())
	all := logs.String() + string(status) + scrape(t, l)
	for _, secret := range []string{srv.SecretKey, "wrong-S3-Secret-7261"} {
		if strings.Contains(all, secret) {
			t.Errorf("%s appears in logs, status or metrics", secret)
		}
	}
}
