"""The quickstart's feature definitions: `loopwright features apply examples/features`.

One entity (a customer), one feature view over a versioned dataset of daily activity snapshots,
an on-demand feature computed from the request's cart value (the same code offline and online),
and the feature service the churn model is trained and served with.
"""

from datetime import timedelta

from loopwright.features import (
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    RequestSource,
    on_demand_feature_view,
)

customer = Entity("customer", join_keys={"customer_id": "int64"})

activity = FeatureView(
    "customer_activity",
    entities=[customer],
    source=DatasetSource("customer-activity", timestamp_field="event_timestamp"),
    schema=[
        Field("orders_30d", "int64"),
        Field("spend_30d", "float64"),
        # A customer not seen for a week has no fresh snapshot: serve 30 days, never a zero.
        Field("days_since_login", "float64", default=30.0),
    ],
    ttl=timedelta(days=7),
    description="Daily snapshot of a customer's last 30 days.",
)

cart = RequestSource("cart", schema=[Field("cart_value", "float64")])


@on_demand_feature_view(sources=[activity, cart], schema=[Field("cart_to_spend", "float64")])
def cart_ratio(inputs):
    import pandas as pd

    return pd.DataFrame({"cart_to_spend": inputs["cart_value"] / (inputs["spend_30d"] + 1.0)})


churn_model = FeatureService("churn_model", features=[activity, cart_ratio])
