// argocd-lua-check runs the Argo CD resource customizations of deploy/argocd (health checks and
// resource actions, in Lua) with Argo CD's own Lua engine: the package util/lua of Argo CD
// (github.com/argoproj/argo-cd/v3/util/lua), the code the application controller and the API
// server run, with the same libraries, the same `obj` global and the same handling of the
// returned table. v3.2.12 is the newest Argo CD whose module builds from the Go module proxy
// (later ones require their gitops-engine through a replace directive, which a dependent module
// does not inherit; v3.6 needs Go 1.27); util/lua is the same there in all that these scripts use.
// The scripts are read the two ways Argo CD reads them:
//
//   - from the argocd-cm ConfigMap that `kubectl kustomize deploy/argocd` renders (krusty, the
//     kustomize engine kubectl embeds), as resource overrides: the `resource.customizations.health.
//     <group>_<Kind>` and `resource.customizations.actions.<group>_<Kind>` keys, parsed as Argo CD's
//     settings manager does; Lua's standard libraries stay closed unless a
//     `resource.customizations.useOpenLibs.<group>_<Kind>` key opens them (Argo CD's default);
//   - from the files under resource_customizations/<group>/<Kind>/, as Argo CD's own test harness
//     (util/lua/health_test.go, custom_actions_test.go) runs the scripts built into its image.
//
// Commands (the kustomization folder is given with -kustomization):
//
//	test -customizations DIR   run every health_test.yaml and actions/action_test.yaml under DIR
//	                           both ways; one line per case, exit 1 on any failure
//	health                     judge the object or List (JSON, as the API server returns it) on
//	                           stdin; one JSON line per object: {"object","status","message",
//	                           "argocd"}: argocd is what Argo CD shows (gitops-engine's health,
//	                           which says "Pending deletion" before any script of a deleted object)
//	discover                   the actions Argo CD offers for the object on stdin (JSON)
//	action NAME                run action NAME on the object on stdin; prints {"operation",
//	                           "object","mergePatch"}: mergePatch is what Argo CD's API server
//	                           sends to Kubernetes (a JSON merge patch from the live object)
//
// Built by scripts/envtest for the tests; never shipped.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/gitops-engine/pkg/health"

	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v3/util/lua"
)

// The annotation the reconcile action sets; its value is a fresh token (the time of the run).
const reconcileAnnotation = "iothubaccess.io/reconcile-requested-at"

func main() {
	kustomization := flag.String("kustomization", "", "folder of the kustomization that renders argocd-cm")
	customizations := flag.String("customizations", "", "resource_customizations folder (test)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua-check -kustomization DIR [-customizations DIR] test | health | discover | action NAME")
	}
	flag.Parse()
	if *kustomization == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	overrides, err := overridesFromKustomization(*kustomization)
	if err != nil {
		fail(err)
	}
	switch flag.Arg(0) {
	case "test":
		if *customizations == "" {
			fail(errors.New("test needs -customizations DIR"))
		}
		if !runTests(*customizations, overrides) {
			os.Exit(1)
		}
	case "health":
		err = judgeHealth(overrides)
	case "discover":
		err = discover(overrides)
	case "action":
		if flag.NArg() != 2 {
			fail(errors.New("action needs the action's name"))
		}
		err = action(overrides, flag.Arg(1))
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-lua-check:", err)
	os.Exit(2)
}

// overridesFromKustomization renders the kustomization as `kubectl kustomize` does and reads the
// resource customizations of the argocd-cm ConfigMap it holds.
func overridesFromKustomization(dir string) (map[string]appv1.ResourceOverride, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var data map[string]string
	for _, r := range resources.Resources() {
		if r.GetKind() == "ConfigMap" && r.GetName() == "argocd-cm" {
			if data != nil {
				return nil, fmt.Errorf("kustomize %s: more than one argocd-cm", dir)
			}
			data = r.GetDataMap()
		}
	}
	if data == nil {
		return nil, fmt.Errorf("kustomize %s: no ConfigMap argocd-cm rendered", dir)
	}
	return overridesFromConfigMap(data)
}

// overridesFromConfigMap reads `resource.customizations.<type>.<group>_<Kind>` keys as Argo CD's
// settings manager does (util/settings: appendResourceOverridesFromSplitKeys and
// convertToOverrideKey), for the types these customizations use; any other key of that family
// is an error here, so that the patch holds nothing this check does not judge.
func overridesFromConfigMap(data map[string]string) (map[string]appv1.ResourceOverride, error) {
	overrides := map[string]appv1.ResourceOverride{}
	for k, v := range data {
		if !strings.HasPrefix(k, "resource.customizations") {
			continue
		}
		parts := strings.SplitN(k, ".", 4)
		if len(parts) < 4 {
			return nil, fmt.Errorf("argocd-cm key %s: not resource.customizations.<type>.<group>_<Kind>", k)
		}
		groupKind := strings.Split(parts[3], "_")
		if len(groupKind) != 2 {
			return nil, fmt.Errorf("argocd-cm key %s: expected <group>_<Kind>", k)
		}
		key := groupKind[0] + "/" + groupKind[1]
		o := overrides[key]
		switch parts[2] {
		case "health":
			o.HealthLua = v
		case "actions":
			o.Actions = v
		case "useOpenLibs":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("argocd-cm key %s: %w", k, err)
			}
			o.UseOpenLibs = b
		default:
			return nil, fmt.Errorf("argocd-cm key %s: customization type %q is not checked here", k, parts[2])
		}
		overrides[key] = o
	}
	return overrides, nil
}

// ---- test: the health_test.yaml and action_test.yaml files -------------------------------------

type healthTests struct {
	Tests []struct {
		InputPath    string `json:"inputPath"`
		HealthStatus struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string                 `json:"inputPath"`
		Result    []appv1.ResourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action               string            `json:"action"`
		InputPath            string            `json:"inputPath"`
		ExpectedOutputPath   string            `json:"expectedOutputPath"`
		ExpectedErrorMessage string            `json:"expectedErrorMessage"`
		Parameters           map[string]string `json:"parameters"`
	} `json:"actionTests"`
}

type tally struct{ passed, failed int }

func (t *tally) report(ok bool, what, detail string) {
	if ok {
		t.passed++
		fmt.Printf("ok   %s: %s\n", what, detail)
	} else {
		t.failed++
		fmt.Printf("FAIL %s: %s\n", what, detail)
	}
}

func runTests(root string, overrides map[string]appv1.ResourceOverride) bool {
	var t tally
	kinds := 0
	groups, err := os.ReadDir(root)
	if err != nil {
		fail(err)
	}
	for _, g := range groups {
		if !g.IsDir() {
			continue
		}
		kindDirs, err := os.ReadDir(filepath.Join(root, g.Name()))
		if err != nil {
			fail(err)
		}
		for _, k := range kindDirs {
			if !k.IsDir() {
				continue
			}
			kinds++
			key := g.Name() + "/" + k.Name()
			dir := filepath.Join(root, g.Name(), k.Name())
			override, ok := overrides[key]
			t.report(ok && override.HealthLua != "" && override.Actions != "", key+" argocd-cm",
				"holds resource.customizations.health and .actions for "+key)
			testHealth(&t, key, dir, overrides)
			testActions(&t, key, dir, overrides)
		}
	}
	if kinds == 0 {
		t.report(false, root, "no <group>/<Kind> folders")
	}
	// Not the 'N passed, N failed' form: the test that runs this prints its own verdict.
	fmt.Printf("argocd-lua-check: %d cases, %d failures\n", t.passed+t.failed, t.failed)
	return t.failed == 0
}

func testHealth(t *tally, key, dir string, overrides map[string]appv1.ResourceOverride) {
	var tests healthTests
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &tests); err != nil {
		t.report(false, key+"/health_test.yaml", err.Error())
		return
	}
	if len(tests.Tests) == 0 {
		t.report(false, key+"/health_test.yaml", "no tests")
	}
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		t.report(false, key+"/health.lua", err.Error())
		return
	}
	for _, tc := range tests.Tests {
		what := "health " + key + " " + tc.InputPath
		obj, err := readObject(filepath.Join(dir, tc.InputPath))
		if err != nil {
			t.report(false, what, err.Error())
			continue
		}
		want := fmt.Sprintf("%s %q", tc.HealthStatus.Status, tc.HealthStatus.Message)
		// As built into an image (Argo CD's own harness: the file, standard libraries open).
		image := verdict(argolua.VM{UseOpenLibs: true}.ExecuteHealthLua(obj, string(script)))
		// As argocd-cm installs it (the application controller's path, libraries closed).
		cm := verdict(argolua.ResourceHealthOverrides(overrides).GetResourceHealth(obj))
		if image == want && cm == want {
			t.report(true, what, want)
		} else {
			t.report(false, what, fmt.Sprintf("want %s; got %s from health.lua, %s from argocd-cm", want, image, cm))
		}
	}
}

func verdict(h *health.HealthStatus, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if h == nil {
		return "no health check"
	}
	return fmt.Sprintf("%s %q", h.Status, h.Message)
}

func testActions(t *tally, key, dir string, overrides map[string]appv1.ResourceOverride) {
	actionsDir := filepath.Join(dir, "actions")
	var tests actionTests
	if err := readYAML(filepath.Join(actionsDir, "action_test.yaml"), &tests); err != nil {
		t.report(false, key+"/actions/action_test.yaml", err.Error())
		return
	}
	if len(tests.DiscoveryTests) == 0 || len(tests.ActionTests) == 0 {
		t.report(false, key+"/actions/action_test.yaml", "needs discoveryTests and actionTests")
	}
	discovery, err := os.ReadFile(filepath.Join(actionsDir, "discovery.lua"))
	if err != nil {
		t.report(false, key+"/actions/discovery.lua", err.Error())
		return
	}
	for _, tc := range tests.DiscoveryTests {
		what := "discovery " + key + " " + tc.InputPath
		obj, err := readObject(filepath.Join(actionsDir, tc.InputPath))
		if err != nil {
			t.report(false, what, err.Error())
			continue
		}
		want := describeActions(tc.Result, nil)
		// As built into an image (Argo CD's harness runs discovery with the libraries open).
		image := describeActions(argolua.VM{UseOpenLibs: true}.ExecuteResourceActionDiscovery(obj, []string{string(discovery)}))
		// As argocd-cm installs it (the API server's path).
		cm := describeActions(discoverFromOverrides(overrides, obj))
		if image == want && cm == want {
			t.report(true, what, want)
		} else {
			t.report(false, what, fmt.Sprintf("want %s; got %s from discovery.lua, %s from argocd-cm", want, image, cm))
		}
	}
	for _, tc := range tests.ActionTests {
		what := "action " + key + " " + tc.Action + " " + tc.InputPath
		obj, err := readObject(filepath.Join(actionsDir, tc.InputPath))
		if err != nil {
			t.report(false, what, err.Error())
			continue
		}
		params := parameters(tc.Parameters)
		script, err := os.ReadFile(filepath.Join(actionsDir, tc.Action, "action.lua"))
		if err != nil {
			t.report(false, what, err.Error())
			continue
		}
		// Argo CD's harness runs actions with the libraries closed, as the API server does.
		fromFile, errFile := argolua.VM{}.ExecuteResourceAction(obj.DeepCopy(), string(script), params)
		fromCM, errCM := runFromOverrides(overrides, obj.DeepCopy(), tc.Action, params)
		if tc.ExpectedErrorMessage != "" {
			ok := errFile != nil && errFile.Error() == tc.ExpectedErrorMessage && errCM != nil && errCM.Error() == tc.ExpectedErrorMessage
			t.report(ok, what, fmt.Sprintf("error %q (got %v; %v from argocd-cm)", tc.ExpectedErrorMessage, errFile, errCM))
			continue
		}
		expected, err := readObject(filepath.Join(actionsDir, tc.ExpectedOutputPath))
		if err != nil {
			t.report(false, what, err.Error())
			continue
		}
		problems := append(checkAction(obj, expected, fromFile, errFile, "action.lua"),
			checkAction(obj, expected, fromCM, errCM, "argocd-cm")...)
		if len(problems) == 0 {
			t.report(true, what, "matches "+tc.ExpectedOutputPath)
		} else {
			t.report(false, what, strings.Join(problems, "; "))
		}
	}
}

func parameters(m map[string]string) []*applicationpkg.ResourceActionParameters {
	var params []*applicationpkg.ResourceActionParameters
	for k, v := range m {
		params = append(params, &applicationpkg.ResourceActionParameters{Name: &k, Value: &v})
	}
	return params
}

// The discovery as Argo CD's API server runs it (server/application: getAvailableActions).
func discoverFromOverrides(overrides map[string]appv1.ResourceOverride, obj *unstructured.Unstructured) ([]appv1.ResourceAction, error) {
	vm := argolua.VM{ResourceOverrides: overrides}
	scripts, err := vm.GetResourceActionDiscovery(obj)
	if err != nil {
		return nil, err
	}
	if len(scripts) == 0 {
		return nil, errors.New("no discovery script for " + obj.GroupVersionKind().GroupKind().String())
	}
	return vm.ExecuteResourceActionDiscovery(obj, scripts)
}

// An action as Argo CD's API server runs it (server/application: RunResourceActionV2).
func runFromOverrides(overrides map[string]appv1.ResourceOverride, obj *unstructured.Unstructured, name string, params []*applicationpkg.ResourceActionParameters) ([]argolua.ImpactedResource, error) {
	vm := argolua.VM{ResourceOverrides: overrides}
	def, err := vm.GetResourceAction(obj, name)
	if err != nil {
		return nil, err
	}
	return vm.ExecuteResourceAction(obj, def.ActionLua, params)
}

func describeActions(actions []appv1.ResourceAction, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	sorted := append([]appv1.ResourceAction(nil), actions...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	b, _ := json.Marshal(sorted)
	return string(b)
}

// checkAction: one patch of the source object itself, equal to the expected output once the
// fresh token is normalized.
func checkAction(source, expected *unstructured.Unstructured, got []argolua.ImpactedResource, err error, from string) []string {
	if err != nil {
		return []string{from + ": " + err.Error()}
	}
	if len(got) != 1 {
		return []string{fmt.Sprintf("%s: %d resources returned, want the object itself", from, len(got))}
	}
	r := got[0]
	if r.K8SOperation != argolua.PatchOperation {
		return []string{fmt.Sprintf("%s: operation %s, want patch", from, r.K8SOperation)}
	}
	result := r.UnstructuredObj
	if result.GroupVersionKind() != source.GroupVersionKind() || result.GetName() != source.GetName() || result.GetNamespace() != source.GetNamespace() {
		return []string{from + ": the action returned another object"}
	}
	var problems []string
	normalized, err := normalize(result)
	if err != nil {
		problems = append(problems, from+": "+err.Error())
	}
	a, b := plain(expected.Object), plain(normalized.Object)
	if !reflect.DeepEqual(a, b) {
		diff, _ := jsonpatch.CreateMergePatch(mustJSON(a), mustJSON(b))
		problems = append(problems, fmt.Sprintf("%s: output differs from the expected one by the merge patch %s", from, diff))
	}
	return problems
}

var token = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)(#2)?$`)

// normalize replaces the reconcile token (the UTC time of the run, to the second) by
// 0001-01-01T00:00:00Z, as Argo CD's harness does for kubectl.kubernetes.io/restartedAt, after
// checking that it is the time of this run.
func normalize(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	out := obj.DeepCopy()
	annotations := out.GetAnnotations()
	v, ok := annotations[reconcileAnnotation]
	if !ok {
		return out, nil
	}
	m := token.FindStringSubmatch(v)
	if m == nil {
		return out, fmt.Errorf("%s: %q is not the UTC time of the run (YYYY-MM-DDTHH:MM:SSZ)", reconcileAnnotation, v)
	}
	at, err := time.Parse(time.RFC3339, m[1])
	if err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
		return out, fmt.Errorf("%s: %q is not the time of this run", reconcileAnnotation, v)
	}
	annotations[reconcileAnnotation] = "0001-01-01T00:00:00Z" + m[2]
	out.SetAnnotations(annotations)
	return out, nil
}

// plain turns an object into what JSON holds (numbers as float64), so that an object read from
// YAML and one returned by Lua compare equal when they hold the same values.
func plain(v map[string]any) any {
	var out any
	_ = json.Unmarshal(mustJSON(v), &out)
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		fail(err)
	}
	return b
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readObject reads a testdata object as Argo CD's harness does (sigs.k8s.io/yaml into a map).
func readObject(path string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// ---- health, discover, action: live objects on stdin -------------------------------------------

// stdinObjects reads one JSON object, or a List of them, as the API server returns them
// (integers stay int64, as in Argo CD's cluster cache).
func stdinObjects() ([]*unstructured.Unstructured, error) {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("stdin is not a JSON object: %w", err)
	}
	items, isList := obj["items"].([]any)
	if !isList {
		return []*unstructured.Unstructured{{Object: obj}}, nil
	}
	var out []*unstructured.Unstructured
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, errors.New("a List item is not an object")
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

func one() (*unstructured.Unstructured, error) {
	objs, err := stdinObjects()
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("expected one object on stdin, got %d", len(objs))
	}
	return objs[0], nil
}

func id(u *unstructured.Unstructured) string {
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

type healthLine struct {
	Object  string `json:"object"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// What Argo CD shows: the same, but for an object being deleted, which Argo CD calls
	// Progressing "Pending deletion" before any health script runs (gitops-engine's
	// health.GetResourceHealth).
	ArgoCD health.HealthStatus `json:"argocd"`
}

func judgeHealth(overrides map[string]appv1.ResourceOverride) error {
	objs, err := stdinObjects()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, u := range objs {
		h, err := argolua.ResourceHealthOverrides(overrides).GetResourceHealth(u)
		if err != nil {
			return fmt.Errorf("%s: %w", id(u), err)
		}
		if h == nil {
			return fmt.Errorf("%s: argocd-cm has no health check for %s", id(u), u.GroupVersionKind().GroupKind())
		}
		shown, err := health.GetResourceHealth(u, argolua.ResourceHealthOverrides(overrides))
		if err != nil || shown == nil {
			return fmt.Errorf("%s: gitops-engine health: %v", id(u), err)
		}
		if err := enc.Encode(healthLine{id(u), string(h.Status), h.Message, *shown}); err != nil {
			return err
		}
	}
	return nil
}

func discover(overrides map[string]appv1.ResourceOverride) error {
	u, err := one()
	if err != nil {
		return err
	}
	actions, err := discoverFromOverrides(overrides, u)
	if err != nil {
		return err
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return json.NewEncoder(os.Stdout).Encode(actions)
}

func action(overrides map[string]appv1.ResourceOverride, name string) error {
	u, err := one()
	if err != nil {
		return err
	}
	live, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	impacted, err := runFromOverrides(overrides, u.DeepCopy(), name, nil)
	if err != nil {
		return err
	}
	if len(impacted) != 1 {
		return fmt.Errorf("action %s returned %d resources", name, len(impacted))
	}
	newObj, err := json.Marshal(impacted[0].UnstructuredObj.Object)
	if err != nil {
		return err
	}
	// What Argo CD's API server sends (server/application: patchResource).
	patch, err := jsonpatch.CreateMergePatch(live, newObj)
	if err != nil {
		return err
	}
	out := map[string]any{
		"operation":  impacted[0].K8SOperation,
		"object":     impacted[0].UnstructuredObj.Object,
		"mergePatch": json.RawMessage(patch),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err = os.Stdout.Write(buf.Bytes())
	return err
}
