! Snow on the ground: rain/snow partition, fresh snow, liquid water in the snow layers, compaction,
! layer combination and division, snow cover fraction and BATS snow age.
!
! CoLM follows the CLM snow model (Dai & Zeng 1997; Oleson et al. 2004, CLM3 tech. note ch. 7):
!   up to 5 layers (slots snl+1..0), the first appears when the depth reaches 0.01 m; thinner snow is
!   "snow without layers" (snl = 0, scv > 0), thermally part of the top soil layer.
!   fresh snow density 50 + 1.7 (T - tfrz + 15)^1.5 kg m-3 (Anderson 1976)
!   compaction: destructive metamorphism, overburden and melt (Anderson 1976; SNTHERM, Jordan 1991)
!   liquid water: gravity drainage of the water above the holding capacity ssi x pore space
!   snow cover: fsno = tanh(snowdp / (2.5 z0g (rho_sno / 100)^m)), m = 1 (Niu & Yang 2007 form, CoLM202X m)
!   snow age: BATS (Dickinson et al. 1993)
! Every routine conserves water exactly; layer mixing conserves enthalpy H = C (T - tfrz) + hfus w_liq.
! Empty slots (above snl+1) hold zeros in dz, z, zi, t, wliq and wice.
module colm_snow
  use colm_const, only: r8, ik, nl_soil, maxsnl, tfrz, hfus, denh2o, denice, cpliq, cpice, ssi, wimp, &
                        zlnd, snow_min_depth
  use colm_layout, only: NSP
  use colm_soiltemp, only: soil_dry_heat_capacity, layer_enthalpy
  use colm_grid, only: snow_layer_geometry
  implicit none
  private
  public :: rain_snow_partition, fresh_snow_density, new_snow, snow_water, snow_compaction, snow_combine, &
            snow_divide, snow_cover_fraction, snow_age_update

  real(r8), parameter :: t_all_rain = 2.0_r8        ! above tfrz + this all precipitation is rain (K)
  real(r8), parameter :: wice_min_layer = 0.1_r8    ! a snow layer with less ice is merged downward (kg m-2)
  real(r8), parameter :: dzmin(5) = [0.010_r8, 0.015_r8, 0.025_r8, 0.055_r8, 0.115_r8] ! minimum thickness, top to bottom (m)
  ! compaction (Anderson 1976 as in SNTHERM.89 / CLM)
  real(r8), parameter :: cmp_c2 = 23.0e-3_r8        ! density factor of the overburden viscosity (m3 kg-1)
  real(r8), parameter :: cmp_c3 = 2.777e-6_r8       ! destructive metamorphism rate at tfrz (s-1)
  real(r8), parameter :: cmp_c4 = 0.04_r8           ! temperature factor of metamorphism (K-1)
  real(r8), parameter :: cmp_c5 = 2.0_r8            ! enhancement with liquid water (-)
  real(r8), parameter :: cmp_dm = 100.0_r8          ! density above which metamorphism slows (kg m-3)
  real(r8), parameter :: cmp_eta0 = 9.0e5_r8        ! viscosity coefficient (kg s m-2)
  ! BATS snow age
  real(r8), parameter :: age_rate = 1.0e-6_r8       ! aging rate at tfrz per unit factor (s-1)
  real(r8), parameter :: age_dirt = 0.3_r8          ! dirt and soot factor (-)
  real(r8), parameter :: age_reset = 0.1_r8         ! fractional reset per kg m-2 of fresh snow (m2 kg-1)
  real(r8), parameter :: scv_ice_sheet = 800.0_r8   ! above this the snow is permanently fresh (kg m-2)

contains

  ! Rain and snow from total precipitation: all snow at or below tfrz, all rain above tfrz + 2 K,
  ! linear in between (CoLM).
  elemental subroutine rain_snow_partition(tair, prec, rain, snow)
    real(r8), intent(in) :: tair                  ! air temperature (K)
    real(r8), intent(in) :: prec                  ! total precipitation (kg m-2 s-1)
    real(r8), intent(out) :: rain                 ! rainfall (kg m-2 s-1)
    real(r8), intent(out) :: snow                 ! snowfall (kg m-2 s-1)
    real(r8) :: frain                             ! rain fraction (-)
    frain = min(1.0_r8, max(0.0_r8, (tair - tfrz) / t_all_rain))
    rain = prec * frain
    snow = prec - rain
  end subroutine rain_snow_partition

  ! Density of fresh snow, 50 + 1.7 (T - tfrz + 15)^1.5 kg m-3 (Anderson 1976), T limited to tfrz + 2 K.
  elemental real(r8) function fresh_snow_density(tair) result(rho)
    real(r8), intent(in) :: tair                  ! air temperature (K)
    real(r8) :: x                                 ! temperature above tfrz - 15 K (K)
    x = min(tair, tfrz + t_all_rain) - tfrz + 15.0_r8
    if (x > 0.0_r8) then
      rho = 50.0_r8 + 1.7_r8 * x**1.5_r8
    else
      rho = 50.0_r8
    end if
  end function fresh_snow_density

  ! Combines layer 2 into layer 1 keeping water, thickness and enthalpy exactly.
  pure subroutine combo(dz1, wl1, wi1, t1, dz2, wl2, wi2, t2)
    real(r8), intent(inout) :: dz1, wl1, wi1, t1  ! layer 1: thickness (m), liquid, ice (kg m-2), T (K)
    real(r8), intent(in) :: dz2, wl2, wi2, t2     ! layer 2: thickness (m), liquid, ice (kg m-2), T (K)
    real(r8) :: h                                 ! combined enthalpy (J m-2)
    real(r8) :: c                                 ! combined heat capacity (J m-2 K-1)
    h = layer_enthalpy(0.0_r8, t1, wl1, wi1) + layer_enthalpy(0.0_r8, t2, wl2, wi2)
    dz1 = dz1 + dz2
    wl1 = wl1 + wl2
    wi1 = wi1 + wi2
    c = cpliq * wl1 + cpice * wi1
    if (c > 0.0_r8) then
      t1 = tfrz + (h - hfus * wl1) / c
    else
      t1 = tfrz
    end if
  end subroutine combo

  ! Adds water (with its enthalpy h_in) to the top soil layer, which also carries the snow without
  ! layers as ice at its temperature (scv_before before, scv_after after); T follows from the enthalpy.
  pure subroutine add_to_soil_top(sp1, dz1, scv_before, scv_after, wl_in, wi_in, h_in, t1, wl1, wi1)
    real(r8), intent(in) :: sp1(NSP)              ! soil parameters of layer 1 (mixed units)
    real(r8), intent(in) :: dz1                   ! thickness of soil layer 1 (m)
    real(r8), intent(in) :: scv_before            ! snow without layers before (kg m-2)
    real(r8), intent(in) :: scv_after             ! snow without layers after (kg m-2)
    real(r8), intent(in) :: wl_in, wi_in          ! liquid and ice added to the soil layer (kg m-2)
    real(r8), intent(in) :: h_in                  ! enthalpy added with everything that comes in (J m-2)
    real(r8), intent(inout) :: t1                 ! temperature of soil layer 1 (K)
    real(r8), intent(inout) :: wl1, wi1           ! liquid and ice of soil layer 1 (kg m-2)
    real(r8) :: c0                                ! capacity of the soil solids (J m-2 K-1)
    real(r8) :: h                                 ! enthalpy after (J m-2)
    c0 = soil_dry_heat_capacity(sp1, dz1)
    h = layer_enthalpy(c0 + cpice * scv_before, t1, wl1, wi1) + h_in
    wl1 = wl1 + wl_in
    wi1 = wi1 + wi_in
    t1 = tfrz + (h - hfus * wl1) / (c0 + cpice * scv_after + cpliq * wl1 + cpice * wi1)
  end subroutine add_to_soil_top

  ! Snowfall reaching the ground (after the canopy) added over dt. With layers the snow joins the top
  ! layer; without layers it adds to scv/snowdp and, once snowdp >= 0.01 m, the first layer is made of
  ! all of it. The fresh snow enters at min(tair, tfrz) and its enthalpy is mixed in (the snow without
  ! layers shares the top soil temperature, so the new layer starts at that mixed temperature).
  subroutine new_snow(dt, tair, snowfall, soilpar, snl, dz, z, zi, t, wliq, wice, scv, snowdp, heat_added)
    real(r8), intent(in) :: dt                          ! time step (s)
    real(r8), intent(in) :: tair                        ! air temperature (K)
    real(r8), intent(in) :: snowfall                    ! snowfall reaching the ground (kg m-2 s-1)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)       ! soil parameters (mixed units)
    integer(ik), intent(inout) :: snl                   ! minus the number of snow layers (-)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)     ! layer thickness (m)
    real(r8), intent(inout) :: z(maxsnl+1:nl_soil)      ! node depth (m)
    real(r8), intent(inout) :: zi(maxsnl:nl_soil)       ! interface depth (m)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)      ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)   ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)   ! ice (kg m-2)
    real(r8), intent(inout) :: scv                      ! snow water, all snow (kg m-2)
    real(r8), intent(inout) :: snowdp                   ! snow depth (m)
    real(r8), intent(out) :: heat_added                 ! enthalpy brought by the snowfall (J m-2)
    real(r8) :: dm                                      ! snow added (kg m-2)
    real(r8) :: tsnow                                   ! temperature of the fresh snow (K)
    real(r8) :: ddz                                     ! thickness added (m)
    real(r8) :: h                                       ! enthalpy (J m-2)
    integer :: lb
    dm = max(0.0_r8, snowfall) * dt
    tsnow = min(tair, tfrz)
    heat_added = cpice * dm * (tsnow - tfrz)
    if (dm > 0.0_r8) then
      ddz = dm / fresh_snow_density(tair)
      if (snl < 0) then
        lb = snl + 1
        h = layer_enthalpy(0.0_r8, t(lb), wliq(lb), wice(lb)) + heat_added
        wice(lb) = wice(lb) + dm
        dz(lb) = dz(lb) + ddz
        t(lb) = tfrz + (h - hfus * wliq(lb)) / (cpliq * wliq(lb) + cpice * wice(lb))
        scv = sum(wliq(lb:0) + wice(lb:0))
        snowdp = sum(dz(lb:0))
      else
        h = max(0.0_r8, scv)
        scv = h + dm
        snowdp = max(0.0_r8, snowdp) + ddz
        call add_to_soil_top(soilpar(:, 1), dz(1), h, scv, 0.0_r8, 0.0_r8, heat_added, t(1), wliq(1), wice(1))
      end if
    end if
    ! the first snow layer: all the snow without layers, at the temperature it shares with the soil top
    ! (taking its heat capacity out of soil layer 1 leaves T(1) unchanged)
    if (snl == 0 .and. snowdp >= snow_min_depth .and. scv > 0.0_r8) then
      snl = -1
      dz(0) = snowdp
      wice(0) = scv
      wliq(0) = 0.0_r8
      t(0) = t(1)
    end if
    if (snl < 0) call snow_layer_geometry(snl, dz, z, zi)
  end subroutine new_snow

  ! Liquid water in the snow layers: rain enters the top layer, the vapour flux (evaporation/sublimation
  ! positive, dew/frost negative) changes the top layer (removal takes liquid first, then ice, going down
  ! if a layer runs out; deposition is frost below tfrz, dew otherwise), then water above the holding
  ! capacity ssi x pore space drains to the layer below (zero if either pore space < wimp), and the
  ! bottom layer's outflow goes to the soil. Moving liquid carries its enthalpy.
  ! Without snow layers the rain passes through to the soil; the vapour flux sublimates snow without
  ! layers (snowdp in proportion), or deposits frost on it when the soil top is below tfrz; whatever
  ! the snow cannot take is returned in qvap_left for the soil.
  subroutine snow_water(dt, snl, dz, t, wliq, wice, scv, snowdp, rain, qvap, qout_soil, qvap_left, dheat)
    real(r8), intent(in) :: dt                          ! time step (s)
    integer(ik), intent(in) :: snl                      ! minus the number of snow layers (-)
    real(r8), intent(in) :: dz(maxsnl+1:nl_soil)        ! layer thickness (m)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)      ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)   ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)   ! ice (kg m-2)
    real(r8), intent(inout) :: scv                      ! snow water, all snow (kg m-2)
    real(r8), intent(inout) :: snowdp                   ! snow depth (m)
    real(r8), intent(in) :: rain                        ! rain reaching the snow surface (kg m-2 s-1)
    real(r8), intent(in) :: qvap                        ! vapour flux from the snow, upward positive (kg m-2 s-1)
    real(r8), intent(out) :: qout_soil                  ! liquid water leaving the snow bottom to the soil (kg m-2 s-1)
    real(r8), intent(out) :: qvap_left                  ! part of qvap not met by the snow (kg m-2 s-1)
    real(r8), intent(out) :: dheat                      ! heat-content change of the snow (J m-2)
    real(r8) :: vol_ice(maxsnl+1:0)                     ! partial volume of ice (m3 m-3)
    real(r8) :: vol_liq(maxsnl+1:0)                     ! partial volume of liquid (m3 m-3)
    real(r8) :: eff_por(maxsnl+1:0)                     ! effective porosity, 1 - vol_ice (m3 m-3)
    real(r8) :: h0, h1                                  ! enthalpy of the snow layers before / after (J m-2)
    real(r8) :: v                                       ! vapour mass still to remove (kg m-2)
    real(r8) :: snew                                    ! snow without layers after the vapour flux (kg m-2)
    real(r8) :: d                                       ! mass taken (kg m-2)
    real(r8) :: qin, qout                               ! water into / out of a layer (kg m-2)
    real(r8) :: hin, hl                                 ! enthalpy carried by qin (J m-2), layer enthalpy (J m-2)
    integer :: j, jn, lb
    qout_soil = 0.0_r8
    qvap_left = 0.0_r8
    dheat = 0.0_r8
    if (snl >= 0) then
      qout_soil = max(0.0_r8, rain)
      v = qvap * dt
      d = 0.0_r8
      if (v > 0.0_r8 .and. scv > 0.0_r8) then
        d = -min(v, scv)
      else if (v < 0.0_r8 .and. scv > 0.0_r8 .and. t(1) < tfrz) then
        d = -v
      end if
      if (abs(d) > 0.0_r8) then
        snew = scv + d
        snowdp = snowdp * (snew / scv)
        dheat = cpice * d * (t(1) - tfrz)
        if (snew <= 0.0_r8) then
          snew = 0.0_r8
          snowdp = 0.0_r8
        end if
        scv = snew
      end if
      qvap_left = (v + d) / dt
      return
    end if
    lb = snl + 1
    h0 = 0.0_r8
    do j = lb, 0
      h0 = h0 + layer_enthalpy(0.0_r8, t(j), wliq(j), wice(j))
    end do
    ! rain and vapour exchange at the layer temperature
    wliq(lb) = wliq(lb) + max(0.0_r8, rain) * dt
    v = qvap * dt
    if (v < 0.0_r8) then
      if (t(lb) < tfrz) then
        wice(lb) = wice(lb) - v
      else
        wliq(lb) = wliq(lb) - v
      end if
    else
      do j = lb, 0
        if (v <= 0.0_r8) exit
        d = min(v, wliq(j))
        wliq(j) = wliq(j) - d
        v = v - d
        d = min(v, wice(j))
        wice(j) = wice(j) - d
        v = v - d
      end do
      qvap_left = v / dt
    end if
    ! percolation: explicit, computed from the partial volumes at the start (CLM3)
    do j = lb, 0
      vol_ice(j) = min(1.0_r8, wice(j) / (dz(j) * denice))
      eff_por(j) = 1.0_r8 - vol_ice(j)
      vol_liq(j) = min(eff_por(j), wliq(j) / (dz(j) * denh2o))
    end do
    qin = 0.0_r8
    hin = 0.0_r8
    do j = lb, 0
      if (qin > 0.0_r8) then
        hl = layer_enthalpy(0.0_r8, t(j), wliq(j), wice(j)) + hin
        wliq(j) = wliq(j) + qin
        t(j) = tfrz + (hl - hfus * wliq(j)) / (cpliq * wliq(j) + cpice * wice(j))
      end if
      qout = max(0.0_r8, (vol_liq(j) - ssi * eff_por(j)) * dz(j)) * denh2o
      if (j < 0) then
        jn = min(j + 1, 0)   ! the snow layer below
        if (eff_por(j) < wimp .or. eff_por(jn) < wimp) then
          qout = 0.0_r8
        else
          qout = min(qout, max(0.0_r8, 1.0_r8 - vol_ice(jn) - vol_liq(jn)) * dz(jn) * denh2o)
        end if
      end if
      qout = min(qout, wliq(j))
      wliq(j) = wliq(j) - qout
      qin = qout
      hin = qout * (hfus + cpliq * (t(j) - tfrz))
    end do
    qout_soil = qin / dt
    h1 = 0.0_r8
    do j = lb, 0
      h1 = h1 + layer_enthalpy(0.0_r8, t(j), wliq(j), wice(j))
    end do
    dheat = h1 - h0
    scv = sum(wliq(lb:0) + wice(lb:0))
  end subroutine snow_water

  ! Compaction of the snow layers (Anderson 1976; SNTHERM; CLM3 eqs. 7.39-7.48): fractional rate
  ! (1/dz) d dz/dt = destructive metamorphism + overburden + melt, applied explicitly, and never
  ! below the volume of the ice and liquid themselves. fiold is the ice fraction before phase change.
  subroutine snow_compaction(dt, snl, imelt, fiold, t, wliq, wice, dz, z, zi, snowdp)
    real(r8), intent(in) :: dt                          ! time step (s)
    integer(ik), intent(in) :: snl                      ! minus the number of snow layers (-)
    integer(ik), intent(in) :: imelt(maxsnl+1:nl_soil)  ! 1 melt, 2 freeze, 0 none (-)
    real(r8), intent(in) :: fiold(maxsnl+1:nl_soil)     ! ice fraction of the layer water before phase change (-)
    real(r8), intent(in) :: t(maxsnl+1:nl_soil)         ! temperature (K)
    real(r8), intent(in) :: wliq(maxsnl+1:nl_soil)      ! liquid water (kg m-2)
    real(r8), intent(in) :: wice(maxsnl+1:nl_soil)      ! ice (kg m-2)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)     ! layer thickness (m)
    real(r8), intent(inout) :: z(maxsnl+1:nl_soil)      ! node depth (m)
    real(r8), intent(inout) :: zi(maxsnl:nl_soil)       ! interface depth (m)
    real(r8), intent(inout) :: snowdp                   ! snow depth (m)
    real(r8) :: burden                                  ! mass of the snow above the layer (kg m-2)
    real(r8) :: void                                    ! air fraction of the layer (-)
    real(r8) :: bi                                      ! partial density of ice (kg m-3)
    real(r8) :: fi                                      ! ice fraction of the layer water now (-)
    real(r8) :: td                                      ! tfrz - T (K)
    real(r8) :: r1, r2, r3                              ! compaction rates (s-1)
    real(r8) :: dzmin_solid                             ! thickness of the ice + liquid alone (m)
    integer :: j
    if (snl >= 0) return
    burden = 0.0_r8
    do j = snl + 1, 0
      void = 1.0_r8 - (wice(j) / denice + wliq(j) / denh2o) / dz(j)
      if (void > 0.001_r8 .and. wice(j) > wice_min_layer) then
        bi = wice(j) / dz(j)
        fi = wice(j) / (wice(j) + wliq(j))
        td = max(0.0_r8, tfrz - t(j))
        r1 = -cmp_c3 * exp(-cmp_c4 * td)
        if (bi > cmp_dm) r1 = r1 * exp(-46.0e-3_r8 * (bi - cmp_dm))
        if (wliq(j) > 0.01_r8 * dz(j)) r1 = r1 * cmp_c5
        r2 = -burden * exp(-0.08_r8 * td - cmp_c2 * bi) / cmp_eta0
        r3 = 0.0_r8
        if (imelt(j) == 1 .and. fiold(j) > 0.0_r8) r3 = -max(0.0_r8, (fiold(j) - fi) / fiold(j)) / dt
        dzmin_solid = wice(j) / denice + wliq(j) / denh2o
        dz(j) = max(dzmin_solid, dz(j) * (1.0_r8 + (r1 + r2 + r3) * dt))
      end if
      burden = burden + wice(j) + wliq(j)
    end do
    call snow_layer_geometry(snl, dz, z, zi)
    snowdp = sum(dz(snl+1:0))
  end subroutine snow_compaction

  ! Removes layer k (moving the layers above it down one slot) after its content has been merged.
  pure subroutine remove_slot(k, snl, dz, t, wliq, wice)
    integer, intent(in) :: k                            ! slot to remove (-)
    integer(ik), intent(inout) :: snl                   ! minus the number of snow layers (-)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)     ! layer thickness (m)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)      ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)   ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)   ! ice (kg m-2)
    integer :: i
    do i = k, snl + 2, -1
      dz(i) = dz(i-1)
      t(i) = t(i-1)
      wliq(i) = wliq(i-1)
      wice(i) = wice(i-1)
    end do
    dz(snl+1) = 0.0_r8
    t(snl+1) = 0.0_r8
    wliq(snl+1) = 0.0_r8
    wice(snl+1) = 0.0_r8
    snl = snl + 1
  end subroutine remove_slot

  ! Combination of snow layers (CLM3 sec. 7.2.7): (1) a layer with less than 0.1 kg m-2 of ice merges
  ! its water into the layer below (the top soil layer for the bottom snow layer); (2) if the pack is
  ! thinner than 0.01 m all layers go: the ice becomes snow without layers (scv, snowdp) and the liquid
  ! goes into the top soil layer; (3) otherwise a layer thinner than dzmin (0.010, 0.015, 0.025, 0.055,
  ! 0.115 m from the top) is combined with its thinner neighbour (the top one with the one below, the
  ! bottom one with the one above). Water and enthalpy are conserved; the water moved into the top soil
  ! layer is added there and reported (it stays in the column: scv goes down by the same amount).
  subroutine snow_combine(soilpar, snl, dz, z, zi, t, wliq, wice, scv, snowdp, wliq_to_soil, wice_to_soil)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)       ! soil parameters (mixed units)
    integer(ik), intent(inout) :: snl                   ! minus the number of snow layers (-)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)     ! layer thickness (m)
    real(r8), intent(inout) :: z(maxsnl+1:nl_soil)      ! node depth (m)
    real(r8), intent(inout) :: zi(maxsnl:nl_soil)       ! interface depth (m)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)      ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)   ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)   ! ice (kg m-2)
    real(r8), intent(inout) :: scv                      ! snow water, all snow (kg m-2)
    real(r8), intent(inout) :: snowdp                   ! snow depth (m)
    real(r8), intent(out) :: wliq_to_soil               ! liquid moved into soil layer 1 (kg m-2)
    real(r8), intent(out) :: wice_to_soil               ! ice moved into soil layer 1 (kg m-2)
    real(r8) :: zwl, zwi, h                             ! liquid, ice (kg m-2) and enthalpy (J m-2) moved
    real(r8) :: ddum                                    ! thickness not carried over (m)
    integer :: j, k, nsno, ineib, kpos
    logical :: found
    wliq_to_soil = 0.0_r8
    wice_to_soil = 0.0_r8
    if (snl >= 0) return
    ! (1) layers whose ice has (nearly) vanished: water and enthalpy into the layer below
    j = snl + 1
    do while (j <= 0)
      if (wice(j) <= wice_min_layer) then
        if (j < 0) then
          ddum = 0.0_r8
          call combo(ddum, wliq(j+1), wice(j+1), t(j+1), 0.0_r8, wliq(j), wice(j), t(j))
        else
          h = layer_enthalpy(0.0_r8, t(0), wliq(0), wice(0))
          call add_to_soil_top(soilpar(:, 1), dz(1), 0.0_r8, 0.0_r8, wliq(0), wice(0), h, t(1), wliq(1), wice(1))
          wliq_to_soil = wliq_to_soil + wliq(0)
          wice_to_soil = wice_to_soil + wice(0)
        end if
        call remove_slot(j, snl, dz, t, wliq, wice)
      end if
      j = j + 1
    end do
    if (snl == 0) then
      scv = 0.0_r8
      snowdp = 0.0_r8
      call snow_layer_geometry(snl, dz, z, zi)
      return
    end if
    snowdp = sum(dz(snl+1:0))
    ! (2) the pack is too thin for layers: ice -> snow without layers, liquid -> soil layer 1
    if (snowdp < snow_min_depth) then
      zwl = sum(wliq(snl+1:0))
      zwi = sum(wice(snl+1:0))
      h = 0.0_r8
      do j = snl + 1, 0
        h = h + layer_enthalpy(0.0_r8, t(j), wliq(j), wice(j))
      end do
      ! the enthalpy of the melt-free ice stays with the layer as snow without layers (hfus only on liquid)
      call add_to_soil_top(soilpar(:, 1), dz(1), 0.0_r8, zwi, zwl, 0.0_r8, h, t(1), wliq(1), wice(1))
      wliq_to_soil = wliq_to_soil + zwl
      do j = snl + 1, 0
        dz(j) = 0.0_r8
        t(j) = 0.0_r8
        wliq(j) = 0.0_r8
        wice(j) = 0.0_r8
      end do
      snl = 0
      scv = zwi
      if (scv <= 0.0_r8) snowdp = 0.0_r8
      call snow_layer_geometry(snl, dz, z, zi)
      return
    end if
    ! (3) thin layers combined with a neighbour, scanning from the top after each combination
    do
      nsno = -snl
      if (nsno < 2) exit
      found = .false.
      do kpos = 1, nsno
        k = snl + kpos
        if (dz(k) < dzmin(kpos)) then
          found = .true.
          exit
        end if
      end do
      if (.not. found) exit
      if (k == snl + 1) then
        ineib = k + 1
      else if (k == 0) then
        ineib = k - 1
      else if (dz(k-1) < dz(k+1)) then
        ineib = k - 1
      else
        ineib = k + 1
      end if
      ! keep the lower slot, merge the upper one into it
      if (ineib > k) then
        call combo(dz(ineib), wliq(ineib), wice(ineib), t(ineib), dz(k), wliq(k), wice(k), t(k))
        call remove_slot(k, snl, dz, t, wliq, wice)
      else
        call combo(dz(k), wliq(k), wice(k), t(k), dz(ineib), wliq(ineib), wice(ineib), t(ineib))
        call remove_slot(ineib, snl, dz, t, wliq, wice)
      end if
    end do
    call snow_layer_geometry(snl, dz, z, zi)
    scv = sum(wliq(snl+1:0) + wice(snl+1:0))
    snowdp = sum(dz(snl+1:0))
  end subroutine snow_combine

  ! Moves the part of layer a beyond thickness dzkeep into layer b (proportional water, same T).
  pure subroutine shift_excess(dzkeep, dza, wla, wia, ta, dzb, wlb, wib, tb)
    real(r8), intent(in) :: dzkeep                ! thickness kept in layer a (m)
    real(r8), intent(inout) :: dza, wla, wia, ta  ! layer a: m, kg m-2, kg m-2, K
    real(r8), intent(inout) :: dzb, wlb, wib, tb  ! layer b: m, kg m-2, kg m-2, K
    real(r8) :: drr, fr, zwl, zwi                 ! m, -, kg m-2, kg m-2
    drr = dza - dzkeep
    fr = drr / dza
    zwl = fr * wla
    zwi = fr * wia
    wla = wla - zwl
    wia = wia - zwi
    dza = dzkeep
    call combo(dzb, wlb, wib, tb, drr, zwl, zwi, ta)
  end subroutine shift_excess

  ! Splits layer a into two equal halves, the lower half going to the empty slot b.
  pure subroutine split_half(dza, wla, wia, ta, dzb, wlb, wib, tb)
    real(r8), intent(inout) :: dza, wla, wia, ta  ! layer a: m, kg m-2, kg m-2, K
    real(r8), intent(out) :: dzb, wlb, wib, tb    ! new layer b: m, kg m-2, kg m-2, K
    dza = 0.5_r8 * dza
    wla = 0.5_r8 * wla
    wia = 0.5_r8 * wia
    dzb = dza
    wlb = wla
    wib = wia
    tb = ta
  end subroutine split_half

  ! Division of thick snow layers (CLM3 sec. 7.2.7, CoLM): counted from the top, the lowest existing
  ! layer k is halved when thicker than 0.03, 0.07, 0.18, 0.41 m (k = 1..4, at most 5 layers); a layer
  ! with others below keeps 0.02, 0.05, 0.11, 0.23 m and passes the excess (water in proportion, its
  ! temperature) to the layer below. Water and enthalpy are conserved.
  subroutine snow_divide(snl, dz, z, zi, t, wliq, wice)
    integer(ik), intent(inout) :: snl                   ! minus the number of snow layers (-)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)     ! layer thickness (m)
    real(r8), intent(inout) :: z(maxsnl+1:nl_soil)      ! node depth (m)
    real(r8), intent(inout) :: zi(maxsnl:nl_soil)       ! interface depth (m)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)      ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)   ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)   ! ice (kg m-2)
    real(r8), parameter :: dzsplit(4) = [0.03_r8, 0.07_r8, 0.18_r8, 0.41_r8] ! halve the bottom layer above (m)
    real(r8), parameter :: dzkeep(4) = [0.02_r8, 0.05_r8, 0.11_r8, 0.23_r8]  ! keep when layers below (m)
    real(r8) :: dzs(5), wls(5), wis(5), ts(5)           ! layers counted from the top: m, kg m-2, kg m-2, K
    integer :: msno, k
    if (snl >= 0) return
    msno = -snl
    dzs = 0.0_r8
    wls = 0.0_r8
    wis = 0.0_r8
    ts = 0.0_r8
    do k = 1, msno
      dzs(k) = dz(snl+k)
      wls(k) = wliq(snl+k)
      wis(k) = wice(snl+k)
      ts(k) = t(snl+k)
    end do
    do k = 1, 4
      if (msno == k) then
        if (dzs(k) > dzsplit(k)) then
          call split_half(dzs(k), wls(k), wis(k), ts(k), dzs(k+1), wls(k+1), wis(k+1), ts(k+1))
          msno = k + 1
        end if
      end if
      if (msno > k) then
        if (dzs(k) > dzkeep(k)) then
          call shift_excess(dzkeep(k), dzs(k), wls(k), wis(k), ts(k), dzs(k+1), wls(k+1), wis(k+1), ts(k+1))
        end if
      end if
    end do
    snl = -msno
    do k = 1, msno
      dz(snl+k) = dzs(k)
      wliq(snl+k) = wls(k)
      wice(snl+k) = wis(k)
      t(snl+k) = ts(k)
    end do
    call snow_layer_geometry(snl, dz, z, zi)
  end subroutine snow_divide

  ! Snow cover fraction of the ground, fsno = tanh(snowdp / (2.5 z0g (rho_sno/100)^m)) with m = 1
  ! (Niu & Yang 2007 form with CoLM202X's m; Niu & Yang use 1.6), and the fraction of the vegetation
  ! buried by snow, wt = 0.1 snowdp / z0m / (1 + 0.1 snowdp / z0m) (CoLM, BATS).
  elemental subroutine snow_cover_fraction(snowdp, scv, lai, sai, z0m, fsno, wt)
    real(r8), intent(in) :: snowdp                ! snow depth (m)
    real(r8), intent(in) :: scv                   ! snow water, all snow (kg m-2)
    real(r8), intent(in) :: lai, sai              ! leaf and stem area index (m2 m-2)
    real(r8), intent(in) :: z0m                   ! momentum roughness length of the canopy (m)
    real(r8), intent(out) :: fsno                 ! fraction of the ground covered by snow (-)
    real(r8), intent(out) :: wt                   ! fraction of the vegetation buried by snow (-)
    real(r8), parameter :: m_melt = 1.0_r8        ! density exponent m (-)
    real(r8), parameter :: rho_ref = 100.0_r8     ! reference snow density (kg m-3)
    real(r8) :: fmelt                             ! density factor (-)
    fsno = 0.0_r8
    wt = 0.0_r8
    if (snowdp > 0.0_r8 .and. scv > 0.0_r8) then
      fmelt = (scv / snowdp / rho_ref)**m_melt
      fsno = tanh(snowdp / (2.5_r8 * zlnd * fmelt))
    end if
    if (lai + sai > 1.0e-6_r8 .and. snowdp > 0.0_r8 .and. z0m > 0.0_r8) then
      wt = 0.1_r8 * snowdp / z0m
      wt = wt / (1.0_r8 + wt)
    end if
  end subroutine snow_cover_fraction

  ! BATS snow age (Dickinson et al. 1993): non-dimensional age tau grows at 1e-6 s-1 (r1 + r2 + r3),
  ! r1 = exp(5000 (1/tfrz - 1/Tg)) grain growth by vapour diffusion, r2 = r1^10 (capped at 1) melt and
  ! refreeze, r3 = 0.3 dirt and soot; fresh snow resets it by the factor (1 - 0.1 dS), dS the snowfall
  ! in kg m-2 over the step (10 kg m-2 resets it fully). Albedo schemes use fage = tau / (1 + tau).
  elemental subroutine snow_age_update(dt, t_grnd, snowfall, scv, snowage)
    real(r8), intent(in) :: dt                    ! time step (s)
    real(r8), intent(in) :: t_grnd                ! ground (snow surface) temperature (K)
    real(r8), intent(in) :: snowfall              ! snowfall reaching the ground (kg m-2 s-1)
    real(r8), intent(in) :: scv                   ! snow water after the step (kg m-2)
    real(r8), intent(inout) :: snowage            ! non-dimensional snow age (-)
    real(r8) :: arg, r1, r2, dela, dels           ! work terms (-)
    if (scv <= 0.0_r8 .or. scv > scv_ice_sheet) then
      snowage = 0.0_r8
      return
    end if
    arg = 5.0e3_r8 * (1.0_r8 / tfrz - 1.0_r8 / t_grnd)
    r1 = exp(arg)
    r2 = exp(min(0.0_r8, 10.0_r8 * arg))
    dela = age_rate * dt * (r1 + r2 + age_dirt)
    dels = age_reset * max(0.0_r8, snowfall) * dt
    snowage = max(0.0_r8, (snowage + dela) * (1.0_r8 - dels))
  end subroutine snow_age_update
end module colm_snow
