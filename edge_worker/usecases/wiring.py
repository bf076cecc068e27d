"""`UseCases`: every use case of the edge, wired once per runtime around one `EdgeContext`."""

from dataclasses import dataclass

from edge_worker.usecases.admission import Admission
from edge_worker.usecases.agent_protocol import AgentProtocol
from edge_worker.usecases.api_keys import ApiKeys
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.creation import JobCreation
from edge_worker.usecases.fanout import FanOut
from edge_worker.usecases.job_watch import JobWatch
from edge_worker.usecases.maintenance import Maintenance
from edge_worker.usecases.pool import PoolController
from edge_worker.usecases.quotas import Quotas
from edge_worker.usecases.transitions import JobTransitions
from edge_worker.usecases.uploads import Uploads
from edge_worker.usecases.usage import Usage
from edge_worker.usecases.views import JobViews
from edge_worker.usecases.webhook_delivery import WebhookDelivery
from edge_worker.usecases.webhook_events import WebhookEvents
from edge_worker.usecases.webhooks import Webhooks


@dataclass(frozen=True)
class UseCases:
    context: EdgeContext
    views: JobViews
    uploads: Uploads
    creation: JobCreation
    transitions: JobTransitions
    agent_protocol: AgentProtocol
    fanout: FanOut
    maintenance: Maintenance
    api_keys: ApiKeys
    quotas: Quotas
    usage: Usage
    watch: JobWatch
    webhooks: Webhooks
    webhook_delivery: WebhookDelivery
    pool: PoolController

    @classmethod
    def build(cls, context: EdgeContext) -> "UseCases":
        views = JobViews(context)
        uploads = Uploads(context)
        transitions = JobTransitions(context, views, WebhookEvents(context, views))
        webhooks = Webhooks(context, views)
        quotas = Quotas(context)
        admission = Admission(context, transitions)
        fanout = FanOut(context, views, transitions)
        pool = PoolController(context)
        return cls(
            context=context,
            views=views,
            uploads=uploads,
            creation=JobCreation(context, views, uploads, quotas, admission),
            transitions=transitions,
            agent_protocol=AgentProtocol(context, views, transitions, admission, fanout),
            fanout=fanout,
            maintenance=Maintenance(context, transitions, admission, fanout, pool),
            api_keys=ApiKeys(
                context.keys,
                context.settings.api_key_pepper,
                context.clock,
                context.settings.api_keys,
            ),
            quotas=quotas,
            usage=Usage(context.store, context.keys, context.clock),
            watch=JobWatch(context, views),
            webhooks=webhooks,
            webhook_delivery=WebhookDelivery(context, webhooks),
            pool=pool,
        )
