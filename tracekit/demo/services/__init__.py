"""The shop's services, one module each; `SERVICES` maps a name to its class."""

from __future__ import annotations


def registry() -> dict:
    from tracekit.demo.services.accounting import Accounting
    from tracekit.demo.services.carrier import Carrier
    from tracekit.demo.services.checkout import Checkout
    from tracekit.demo.services.fraud import FraudDetection
    from tracekit.demo.services.frontend import Frontend
    from tracekit.demo.services.inventory import Inventory
    from tracekit.demo.services.notification import Notification
    from tracekit.demo.services.orders import Orders
    from tracekit.demo.services.payment import Payment
    from tracekit.demo.services.shipping import Shipping

    return {cls.name: cls for cls in (Frontend, Orders, Checkout, Inventory, Payment, Shipping,
                                      Carrier, FraudDetection, Accounting, Notification)}


SERVICE_NAMES = ["frontend", "orders", "checkout", "inventory", "payment", "shipping", "carrier",
                 "fraud-detection", "accounting", "notification"]
