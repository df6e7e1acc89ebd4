package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/examples/internal/age"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/orphan"
)

// adminView is the admin page's data.
type adminView struct {
	view
	Dirs              []dirRow
	Total             storage.Count
	Sweep             *sweepView
	Plan              *planView
	Applied           *applyView
	QRAge, SweepEvery string
	Chart             *chart
	Growth            []growth
	GrowthWindows     []string
}

// sweepView is the last QR sweep, in words.
type sweepView struct {
	Started                  time.Time
	Took                     string
	Expired                  int // rows whose code expired
	Matched, Deleted, Failed storage.Count
	Kept                     []keptLine
	Stopped, Err             string
}

// planView is the last dry run, as the page lists it.
type planView struct {
	ID             uint64
	Created        time.Time
	Took, Grace    string
	GraceText      string // as the form takes it
	Total, Scanned storage.Count
	Missing        int
	Dirs           []dirRow
	Orphans        []orphan.Orphan // the first maxListedOrphans
	More           int             // how many more there are
}

// applyView is the last apply.
type applyView struct {
	When                     time.Time
	Took                     string
	Planned, Deleted, Failed storage.Count
	Kept                     []keptLine
}

// maxListedOrphans bounds the page's list of orphans.
const maxListedOrphans = 200

// admin shows the storage report: bytes per directory, the last sweep, and
// the last orphan check.
func (a *App) admin(w http.ResponseWriter, r *http.Request) {
	a.showAdmin(w, r, view{Flash: takeFlash(w, r)}, http.StatusOK)
}

// showAdmin renders the admin page with status code.
func (a *App) showAdmin(w http.ResponseWriter, r *http.Request, v view, code int) {
	var tally storage.DirTally
	var total storage.Count
	err := storage.List(r.Context(), a.fs, storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			tally.Add(e.Path, e.Size)
			total.Add(e.Size)
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	u, err := a.loadUsage(r.Context(), time.Now().Add(-7*24*time.Hour))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v.Nav = "admin"
	data := &adminView{view: v, Dirs: dirRows(tally.Top(0)), Total: total, QRAge: age.Format(a.qrAge),
		Chart: newChart(u, 7*24*time.Hour), Growth: u.growths(), GrowthWindows: []string{"last day", "last week"}}
	a.mu.Lock()
	if a.sweepEvery > 0 {
		data.SweepEvery = age.Format(a.sweepEvery)
	}
	if rep := a.lastSweep; rep != nil {
		s := &sweepView{Started: rep.Started, Took: took(rep.Duration), Expired: a.lastExpired,
			Matched: rep.Matched, Deleted: rep.Deleted, Failed: rep.Failed, Kept: keptLines(rep.Kept), Stopped: rep.Stopped}
		if a.sweepErr != nil {
			s.Err = a.sweepErr.Error()
		}
		data.Sweep = s
	}
	if p := a.lastPlan; p != nil && p.Plan != nil {
		data.Plan = &planView{ID: p.ID, Created: p.Plan.Created, Took: took(p.Plan.Duration), Grace: p.graceWords(), GraceText: p.GraceText(),
			Total: p.Plan.Total, Scanned: p.Plan.Scanned, Missing: p.Plan.MissingCount, Dirs: dirRows(p.Plan.Dirs)}
		data.Plan.Orphans = p.Plan.Orphans[:min(len(p.Plan.Orphans), maxListedOrphans)]
		data.Plan.More = len(p.Plan.Orphans) - len(data.Plan.Orphans)
	}
	if rep := a.lastApply; rep != nil {
		data.Applied = &applyView{When: a.lastApplyAt, Took: took(rep.Duration), Planned: rep.Planned, Deleted: rep.Deleted, Failed: rep.Failed, Kept: keptLines(rep.Kept)}
	}
	a.mu.Unlock()
	a.render(w, r, adminPage, code, data)
}

// orphans runs the orphan check as a dry run (action=find) or applies the
// last plan (action=apply). min_age is the grace period of a dry run
// (an age: 24h, 7d, 0 for none; default 24h). An apply deletes what the
// dry run listed, with that dry run's grace period: its form carries the
// plan's number and grace period, and is refused (409, nothing deleted)
// when another dry run has replaced that plan since.
func (a *App) orphans(w http.ResponseWriter, r *http.Request) {
	form := "orphans"
	action := r.FormValue("action")
	if action == "apply" {
		form = "apply"
	}
	if action != "" && action != "find" && action != "apply" {
		a.formFail(w, r, form, r.PostForm, userErr(http.StatusBadRequest, "unknown action"))
		return
	}
	minAge, err := graceArg(r.FormValue("min_age"))
	if err != nil {
		a.formFail(w, r, form, r.PostForm, err)
		return
	}
	if action == "apply" {
		a.applyPlan(w, r, minAge)
		return
	}
	plan, err := a.finder(orphan.Options{MinAge: minAge}).Find(r.Context())
	a.mu.Lock()
	a.planSeq++
	a.lastPlan, a.lastApply = &shownPlan{Plan: plan, ID: a.planSeq, minAge: minAge}, nil
	if err != nil {
		a.lastPlan = nil // a refused plan offers nothing to apply
	}
	a.mu.Unlock()
	if err != nil {
		a.adminError(w, r, form, "The check found nothing to delete safely: "+err.Error())
		return
	}
	msg := fmt.Sprintf("Dry run: %d orphaned %s (%s). Nothing was deleted; review the list below.", plan.Total.Files, plural(plan.Total.Files, "file", "files"), human(plan.Total.Bytes))
	if plan.Total.Files == 0 {
		msg = "Dry run: no orphaned files."
	}
	done(w, r, "/admin", msg)
}

// applyPlan applies the plan the apply form names.
func (a *App) applyPlan(w http.ResponseWriter, r *http.Request, minAge time.Duration) {
	plan, err := a.claimPlan(r.FormValue("plan"), minAge, r.FormValue("min_age") != "")
	if err != nil {
		a.formFail(w, r, "apply", r.PostForm, err)
		return
	}
	if plan == nil {
		a.adminError(w, r, "orphans", "Run the check first: there is no list of orphans to delete.")
		return
	}
	rep, err := a.finder(orphan.Options{MinAge: plan.minAge}).Apply(r.Context(), plan.Plan)
	a.mu.Lock()
	a.lastApply, a.lastApplyAt = rep, time.Now()
	a.mu.Unlock()
	if err != nil {
		a.adminError(w, r, "apply", "Deleting the orphans stopped: "+err.Error())
		return
	}
	done(w, r, "/admin", fmt.Sprintf("Deleted %d orphaned %s (%s).", rep.Deleted.Files, plural(rep.Deleted.Files, "file", "files"), human(rep.Deleted.Bytes)))
}

// adminError redirects to the admin page with msg next to form: the
// failure of an action the request itself was fine for.
func (a *App) adminError(w http.ResponseWriter, r *http.Request, form, msg string) {
	a.log.WarnContext(r.Context(), "admin action failed", "form", form, "error", msg)
	setFlash(w, flash{Kind: "error", Form: form, Msg: msg})
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// shownPlan is the last dry run: its plan, its number (the apply form
// names it), and the grace period it was made with, as orphan.Options
// takes it.
type shownPlan struct {
	Plan   *orphan.Plan
	ID     uint64
	minAge time.Duration
}

// GraceText is the plan's grace period as the form takes it.
func (p *shownPlan) GraceText() string {
	if p.minAge < 0 {
		return "0"
	}
	return age.Format(p.minAge)
}

// graceWords is the plan's grace period for people.
func (p *shownPlan) graceWords() string {
	if p.minAge < 0 {
		return "0 (none)"
	}
	return age.Format(p.minAge)
}

// claimPlan takes the last plan for an apply, so that it is applied once.
// id is the plan number the apply form carries, and minAge its grace
// period (when given): an apply names the plan its page showed, and is
// refused if that is not the last one. With neither (a form from before
// they were carried), the last plan is applied with its own grace period.
// A nil plan and no error: there is none to apply.
func (a *App) claimPlan(id string, minAge time.Duration, gotMinAge bool) (*shownPlan, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.lastPlan
	if p == nil || p.Plan == nil {
		if id != "" {
			return nil, userErr(http.StatusConflict, "this list of orphans was applied or replaced since the page was shown; run the check again")
		}
		return nil, nil
	}
	if (id != "" && id != strconv.FormatUint(p.ID, 10)) || (gotMinAge && minAge != p.minAge) {
		return nil, userErr(http.StatusConflict, "another check ran since this page was shown; review its list before deleting")
	}
	a.lastPlan = nil
	return p, nil
}

// graceArg parses the form's grace period, as orphan.Options.MinAge takes
// it: an age, 24h when empty, and an explicit 0 means none (-1).
func graceArg(v string) (time.Duration, error) {
	if strings.TrimSpace(v) == "" {
		return 24 * time.Hour, nil
	}
	d, err := age.Parse(v, 0)
	if err != nil || d < 0 {
		return 0, userErr(http.StatusBadRequest, "the grace period must be an age such as 24h, 7d or 0")
	}
	if d == 0 {
		return -1, nil // an explicit 0 means no grace period
	}
	return d, nil
}

// sweepNow runs the QR sweep at once.
func (a *App) sweepNow(w http.ResponseWriter, r *http.Request) {
	expired, rep, err := a.sweepQR(r.Context())
	if err != nil {
		a.adminError(w, r, "sweep", "The sweep failed: "+err.Error())
		return
	}
	done(w, r, "/admin", fmt.Sprintf("Swept: %d expired QR %s cleared, %d %s deleted (%s).",
		expired, plural(expired, "code", "codes"), rep.Deleted.Files, plural(rep.Deleted.Files, "file", "files"), human(rep.Deleted.Bytes)))
}
