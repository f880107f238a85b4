//! The HorizontalPodAutoscaler controller's core (`pkg/controller/podautoscaler`), for a
//! cluster without a resource metrics API: as upstream does without metrics-server, it reports
//! why it cannot compute a replica count and only enforces `minReplicas`/`maxReplicas`.
//!
//! [`reconcile`] takes the HPA (autoscaling/v2) and the replica count of its scale target
//! (`None` when the target cannot be read) and returns the [`Plan`]: the size to scale the
//! target to, the Events and the new status (`None` when unchanged).
//!
//! Following upstream's `reconcileAutoscaler`: a target at 0 replicas disables scaling
//! (`ScalingDisabled`); a target outside the bounds is scaled to the nearest bound
//! (`SuccessfulRescale`, `New size: N; reason: ...`); otherwise computing the replica count
//! fails on the first metric (`FailedGetResourceMetric`). Differences: the metric failure is the
//! same for every metric source (the message names the resource of a `Resource` metric, else
//! `cpu`), `status.currentMetrics` is never set, and `desiredReplicas` is the current count
//! while metrics are unavailable.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::event::Event;
use crate::meta;

/// Upstream's `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// What one sync of an HPA asks the loop to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Scale the target to this many replicas through its `scale` subresource.
    pub scale_to: Option<i64>,
    /// Events to record on the HPA.
    pub events: Vec<Event>,
    /// The new status, `None` when the stored one already matches.
    pub status: Option<Value>,
}

/// One sync of `hpa`, whose target currently has `target_replicas` (`Err` with the reason when
/// the target's scale could not be read).
pub fn reconcile(hpa: &Value, target_replicas: Result<i64, String>, now: SystemTime) -> Plan {
    let now_text = meta::format_time(meta::unix_seconds(now));
    let old = hpa.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut conditions: Vec<Value> = Vec::new();
    let mut events = Vec::new();
    let mut set = |type_: &str, status: &str, reason: &str, message: String| {
        let since = meta::condition(&old, type_)
            .filter(|c| meta::str_at(c, "/status") == status)
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now_text));
        conditions.push(json!({
            "type": type_, "status": status, "lastTransitionTime": since,
            "reason": reason, "message": message,
        }));
    };
    let current = match target_replicas {
        Ok(n) => n,
        Err(why) => {
            let message =
                format!("the HPA controller was unable to get the target's current scale: {why}");
            events.push(Event::warning("FailedGetScale", why));
            set("AbleToScale", "False", "FailedGetScale", message);
            let mut status = old.clone();
            status["conditions"] = json!(conditions);
            let status = (status != old).then_some(status);
            return Plan {
                scale_to: None,
                events,
                status,
            };
        }
    };
    let min = meta::int_at(hpa, "/spec/minReplicas", 1);
    let max = meta::int_at(hpa, "/spec/maxReplicas", min);
    let mut scale_to = None;
    let mut desired = current;
    let mut able = (
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".to_owned(),
    );
    if current == 0 && min != 0 {
        desired = 0;
        set("AbleToScale", "True", able.0, able.1.clone());
        set(
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
        );
    } else if current > max || current < min {
        let (bound, reason) = if current > max {
            (max, "Current number of replicas above Spec.MaxReplicas")
        } else {
            (min, "Current number of replicas below Spec.MinReplicas")
        };
        desired = bound;
        scale_to = Some(bound);
        events.push(Event::normal(
            "SuccessfulRescale",
            format!("New size: {bound}; reason: {reason}"),
        ));
        able = (
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {bound}"),
        );
        set("AbleToScale", "True", able.0, able.1.clone());
        if let Some(c) = meta::condition(&old, "ScalingActive") {
            conditions.push(c.clone());
        }
    } else {
        let metric = hpa
            .pointer("/spec/metrics/0/resource/name")
            .and_then(Value::as_str)
            .unwrap_or("cpu");
        let err = format!(
            "failed to get {metric} utilization: unable to get metrics for resource {metric}: no metrics returned from resource metrics API"
        );
        events.push(Event::warning("FailedGetResourceMetric", err.clone()));
        set("AbleToScale", "True", able.0, able.1.clone());
        set(
            "ScalingActive",
            "False",
            "FailedGetResourceMetric",
            format!("the HPA was unable to compute the replica count: {err}"),
        );
    }
    let mut status = json!({
        "currentReplicas": current,
        "desiredReplicas": desired,
        "conditions": conditions,
    });
    if scale_to.is_some() {
        status["lastScaleTime"] = json!(now_text);
    } else if let Some(t) = old.get("lastScaleTime") {
        status["lastScaleTime"] = t.clone();
    }
    if let Some(g) = hpa.pointer("/metadata/generation") {
        status["observedGeneration"] = g.clone();
    }
    Plan {
        scale_to,
        events,
        status: (status != old).then_some(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(min: i64, max: i64) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "team", "generation": 1},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": min, "maxReplicas": max,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            },
        })
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn within_bounds_reports_missing_metrics_then_nothing() {
        let h = hpa(1, 5);
        let plan = reconcile(&h, Ok(2), at(0));
        assert_eq!(plan.scale_to, None);
        assert_eq!(
            plan.events,
            vec![Event::warning(
                "FailedGetResourceMetric",
                "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
            )]
        );
        let status = plan.status.unwrap();
        assert_eq!(status["currentReplicas"], 2);
        let able = meta::condition(&status, "AbleToScale").unwrap();
        assert_eq!(able["status"], "True");
        assert_eq!(able["reason"], "SucceededGetScale");
        assert_eq!(
            able["message"],
            "the HPA controller was able to get the target's current scale"
        );
        let active = meta::condition(&status, "ScalingActive").unwrap();
        assert_eq!(active["status"], "False");
        assert_eq!(active["reason"], "FailedGetResourceMetric");
        assert_eq!(
            active["message"],
            "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
        );
        let mut stored = h.clone();
        stored["status"] = status;
        // Later syncs keep the transition times and write nothing.
        assert_eq!(reconcile(&stored, Ok(2), at(15)).status, None);
    }

    #[test]
    fn below_min_scales_up_to_min() {
        let plan = reconcile(&hpa(3, 5), Ok(1), at(0));
        assert_eq!(plan.scale_to, Some(3));
        assert_eq!(
            plan.events,
            vec![Event::normal(
                "SuccessfulRescale",
                "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
            )]
        );
        let status = plan.status.unwrap();
        assert_eq!(status["desiredReplicas"], 3);
        assert_eq!(
            meta::condition(&status, "AbleToScale").unwrap()["reason"],
            "SucceededRescale"
        );
        assert!(status.get("lastScaleTime").is_some());
    }

    #[test]
    fn above_max_scales_down_to_max() {
        let plan = reconcile(&hpa(1, 4), Ok(9), at(0));
        assert_eq!(plan.scale_to, Some(4));
        assert_eq!(
            plan.events[0].message,
            "New size: 4; reason: Current number of replicas above Spec.MaxReplicas"
        );
    }

    #[test]
    fn zero_replicas_disables_scaling() {
        let plan = reconcile(&hpa(1, 4), Ok(0), at(0));
        assert_eq!(plan.scale_to, None);
        let status = plan.status.unwrap();
        assert_eq!(
            meta::condition(&status, "ScalingActive").unwrap()["reason"],
            "ScalingDisabled"
        );
    }

    #[test]
    fn missing_target_fails_to_get_scale() {
        let plan = reconcile(
            &hpa(1, 4),
            Err("deployments.apps \"web\" not found".into()),
            at(0),
        );
        assert_eq!(plan.scale_to, None);
        let status = plan.status.unwrap();
        let able = meta::condition(&status, "AbleToScale").unwrap();
        assert_eq!(able["status"], "False");
        assert_eq!(able["reason"], "FailedGetScale");
        assert_eq!(plan.events[0].reason, "FailedGetScale");
    }
}
