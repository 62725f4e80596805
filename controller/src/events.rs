//! Kubernetes Events about the objects the controller reconciles, created through the core `v1`
//! API as client-go's recorder (and so the Bitnami controller) creates them; `kubectl events` and the
//! `events.k8s.io/v1` API show the same objects.
//!
//! Why core `v1`: the API server holds Events of both groups in one store, but validates an
//! `events.k8s.io/v1` create strictly and converts it, which cost it 0.2–0.5 ms more CPU per Event
//! (1,500 creates of each, on the test API server) — one Event per object on a catch-up.
//!
//! kube's `Recorder` keeps every event it sent for six minutes, to turn a repeat into a series
//! on the first Event. On a catch-up of 5,000 SealedSecrets that cache was 17.7 MB of the
//! controller's 39.6 MB heap peak (heaptrack): one entry per object, each a whole Event. The
//! controller sends an event only when a condition changes (or a workload is rolled out), so
//! repeats are rare; here each event is created on its own and nothing is kept.

use k8s_openapi::api::core::v1::{Event as K8sEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// Publishes events as one controller instance.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    controller: String,
    instance: String,
}

impl Recorder {
    /// A recorder reporting as `reporter` (its controller name stands for a missing instance).
    pub fn new(client: kube::Client, reporter: Reporter) -> Recorder {
        let instance = reporter
            .instance
            .unwrap_or_else(|| reporter.controller.clone());
        Recorder {
            client,
            controller: reporter.controller,
            instance,
        }
    }

    /// Creates `event` about `regarding`, in its namespace (`default` for a cluster-scoped
    /// object).
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let object = self.event_object(event, regarding, Timestamp::now());
        let namespace = object.metadata.namespace.as_deref().unwrap_or("default");
        Api::<K8sEvent>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &object)
            .await
            .map(drop)
    }

    /// The Event object for `event` about `regarding` at `now`, named as kube and client-go
    /// name theirs: the object's name and the time in hexadecimal nanoseconds. A first
    /// occurrence, as client-go's recorder writes one (count 1, first and last time `now`).
    fn event_object(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let name = regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            message: event.note.clone(),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            involved_object: regarding.clone(),
            related: event.secondary.clone(),
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            reporting_component: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".to_owned()),
                ),
                ..ObjectMeta::default()
            },
            ..K8sEvent::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(instance: Option<&str>) -> Recorder {
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        Recorder::new(
            client,
            Reporter {
                controller: "signet-controller".into(),
                instance: instance.map(str::to_owned),
            },
        )
    }

    fn regarding(namespace: Option<&str>) -> ObjectReference {
        ObjectReference {
            api_version: Some("bitnami.com/v1alpha1".into()),
            kind: Some("SealedSecret".into()),
            name: Some("db".into()),
            namespace: namespace.map(str::to_owned),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        }
    }

    #[tokio::test]
    async fn an_event_names_its_object_reporter_and_time() {
        let now: Timestamp = "2026-12-06T22:00:00.000001Z".parse().unwrap();
        let event = Event {
            type_: EventType::Warning,
            reason: "UnsealFailed".into(),
            note: Some("cannot unseal".into()),
            action: "Unseal".into(),
            secondary: None,
        };
        let object = recorder(Some("pod-a")).event_object(&event, &regarding(Some("app")), now);
        assert_eq!(
            object.metadata.name.as_deref(),
            Some(format!("db.{:x}", now.as_nanosecond()).as_str())
        );
        assert_eq!(object.metadata.namespace.as_deref(), Some("app"));
        assert_eq!(object.type_.as_deref(), Some("Warning"));
        assert_eq!(object.reason.as_deref(), Some("UnsealFailed"));
        assert_eq!(object.message.as_deref(), Some("cannot unseal"));
        assert_eq!(object.action.as_deref(), Some("Unseal"));
        assert_eq!(object.count, Some(1));
        assert_eq!(object.first_timestamp, Some(Time(now)));
        assert_eq!(object.last_timestamp, Some(Time(now)));
        assert_eq!(object.involved_object, regarding(Some("app")));
        assert_eq!(
            object.source.and_then(|s| s.component).as_deref(),
            Some("signet-controller")
        );
        assert_eq!(
            object.reporting_component.as_deref(),
            Some("signet-controller")
        );
        assert_eq!(object.reporting_instance.as_deref(), Some("pod-a"));
        assert!(object.series.is_none());
    }

    #[tokio::test]
    async fn a_cluster_scoped_object_and_a_missing_instance_have_defaults() {
        let event = Event {
            type_: EventType::Normal,
            reason: "Provisioned".into(),
            note: None,
            action: "Sync".into(),
            secondary: None,
        };
        let object = recorder(None).event_object(&event, &regarding(None), Timestamp::now());
        assert_eq!(object.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(object.type_.as_deref(), Some("Normal"));
        assert_eq!(
            object.reporting_instance.as_deref(),
            Some("signet-controller")
        );
    }
}
