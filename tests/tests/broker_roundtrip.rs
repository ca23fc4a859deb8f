//! A record batch travels through a real broker (Mosquitto and the embedded one), and the
//! broker can be stopped and restarted on the same port.

use std::time::Duration;

use outpost_shared::{
    AgentId, AgentTopic, Batch, CheckId, Record, RecordBody, ResultRecord, SiteId, Status,
    TopicKind, decode, encode,
};
use outpost_tests::{Broker, BrokerKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

fn batch() -> Batch {
    Batch {
        v: 1,
        site: SiteId::new("plant-leeds").expect("valid"),
        agent: AgentId::new("line3-pc").expect("valid"),
        epoch: 7,
        acked: Some(0),
        records: (1..=3)
            .map(|seq| Record {
                seq,
                ts: jiff::Timestamp::now(),
                body: RecordBody::Result(ResultRecord {
                    check: CheckId::new("router").expect("valid"),
                    status: Status::Ok,
                    summary: "The router answered all 5 pings.".into(),
                    metrics: [("loss_pct".to_owned(), 0.0)].into(),
                    historical: false,
                }),
            })
            .collect(),
    }
}

async fn round_trip(broker: &Broker) -> Batch {
    let sent = batch();
    let topic = AgentTopic::new(&sent.site, &sent.agent, TopicKind::Records).to_string();

    let mut opts = MqttOptions::new("test-sub", "127.0.0.1", broker.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (sub, mut sub_loop) = AsyncClient::new(opts, 16);
    sub.subscribe(TopicKind::Records.filter_all(), QoS::AtLeastOnce)
        .await
        .expect("queue subscribe");
    loop {
        if let Event::Incoming(Packet::SubAck(_)) =
            sub_loop.poll().await.expect("subscriber connects")
        {
            break;
        }
    }

    let opts = MqttOptions::new("plant-leeds.line3-pc", "127.0.0.1", broker.port());
    let (publisher, mut pub_loop) = AsyncClient::new(opts, 16);
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    publisher
        .publish(&topic, QoS::AtLeastOnce, false, encode(&sent))
        .await
        .expect("queue publish");

    let received = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) =
                sub_loop.poll().await.expect("subscriber stays up")
            {
                assert_eq!(p.topic, topic);
                return decode::<Batch>(&p.payload).expect("the batch decodes");
            }
        }
    })
    .await
    .expect("the batch arrives within 10 s");
    assert_eq!(received, sent);
    received
}

#[tokio::test]
async fn batch_through_mosquitto() {
    if BrokerKind::preferred() != BrokerKind::Mosquitto {
        eprintln!("mosquitto is not installed; the embedded broker test covers this run");
        return;
    }
    let mut broker = Broker::start_kind(BrokerKind::Mosquitto);
    assert_eq!(round_trip(&broker).await.records.len(), 3);
    broker.restart();
    assert_eq!(
        round_trip(&broker).await.records.len(),
        3,
        "works again after a restart on the same port"
    );
}

#[tokio::test]
async fn batch_through_embedded_broker() {
    let mut broker = Broker::start_kind(BrokerKind::Embedded);
    assert_eq!(round_trip(&broker).await.records.len(), 3);
    broker.kill();
    assert!(!broker.is_running());
    broker.restart();
    assert_eq!(
        round_trip(&broker).await.records.len(),
        3,
        "works again after kill -9 and restart"
    );
}
