from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Quality and fairness"

    def ready(self) -> None:
        # The claim queue (reviews, a floor below) consults competence and serves gold
        # copies through its hooks; quality fills them in here.
        from quality.models import GoldServing
        from quality.services.competence import enforce_at_claim
        from quality.services.gold import gold_claim
        from reviews import hooks

        hooks.register_claim_gate(lambda profile: enforce_at_claim(profile=profile))
        hooks.register_claim_server(gold_claim)
        hooks.register_own_gold_cases(
            lambda reviewer_id: GoldServing.objects.filter(reviewer_id=reviewer_id).values("case_id")
        )
