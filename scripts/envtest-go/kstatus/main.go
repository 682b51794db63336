// kstatus-check judges objects with the kstatus library that Flux, Argo CD's kstatus users and
// `helm --wait` rely on (sigs.k8s.io/cli-utils/pkg/kstatus/status). It reads one JSON object or a
// List (as `kubectl get -o json` prints) on stdin and prints one line per object:
//
//	<Kind>/<namespace>/<name> <Status> <message>
//
// Built by scripts/envtest for the tests; never shipped.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading stdin:", err)
		os.Exit(2)
	}
	var obj map[string]interface{}
	// Integers stay int64, as the unstructured accessors expect.
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		fmt.Fprintln(os.Stderr, "stdin is not a JSON object:", err)
		os.Exit(2)
	}
	items := []map[string]interface{}{obj}
	if list, ok := obj["items"].([]interface{}); ok {
		items = items[:0]
		for _, it := range list {
			m, ok := it.(map[string]interface{})
			if !ok {
				fmt.Fprintln(os.Stderr, "a List item is not an object")
				os.Exit(2)
			}
			items = append(items, m)
		}
	}
	for _, it := range items {
		u := &unstructured.Unstructured{Object: it}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s/%s/%s: %v\n", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			os.Exit(1)
		}
		fmt.Printf("%s/%s/%s %s %s\n", u.GetKind(), u.GetNamespace(), u.GetName(), res.Status, res.Message)
	}
}
